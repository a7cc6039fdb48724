//! The SGX SDK's sealed-data layout, `sgx_sealed_data_t` (`sgx_tseal.h`), byte for byte.
//!
//! ```text
//! @0    KEYREQUEST          512   the request the seal key was derived with
//! @512  plain_text_offset   u32   where the additional MAC text starts in the payload
//! @516  reserved            12
//! @528  aes_data.payload_size  u32
//! @532  aes_data.reserved   12
//! @544  aes_data.payload_tag   16   AES-GCM tag
//! @560  aes_data.payload    payload_size: encrypted text, then the additional MAC text in clear
//! ```
//!
//! This module owns the layout only, with no cryptography: sealing and unsealing live in the
//! enclave SDK. [`SealedData`] owns its payload; [`SealedDataRef`] reads a blob in place, with the
//! same checks, borrowing the payload; [`SealedData::encode_header`] writes the fixed part alone,
//! so that a sealer can build a blob in one buffer and encrypt it there.

use crate::codec::{Codec, DecodeError, FixedSize, Reader};
use crate::keyrequest::Keyrequest;

/// Size of the fixed part before the payload (the SDK's `sizeof(sgx_sealed_data_t)`).
pub const SEALED_DATA_HEADER_SIZE: usize = 560;

/// Offset of `aes_data.payload_tag` (16 bytes) in an encoded blob.
pub const SEALED_DATA_TAG_OFFSET: usize = 544;

/// The largest `payload_size` Coffer accepts: 256 MiB.
///
/// `payload_size` is attacker-controlled (sealed blobs sit in untrusted storage). Without a cap,
/// whoever sizes a buffer from the header (the unseal path allocates the plaintext in enclave
/// secret memory, whose budget is a few MiB of RLIMIT_MEMLOCK) could be made to allocate up to
/// 4 GiB per blob and exhaust the enclave's memory.
pub const MAX_SEALED_PAYLOAD: usize = 256 << 20;

/// The size of a sealed blob holding `aad_len` bytes of additional MAC text and `text_len` bytes
/// of encrypted text, like the SDK's `sgx_calc_sealed_data_size`; `None` if the payload would
/// exceed [`MAX_SEALED_PAYLOAD`].
pub fn sealed_data_size(aad_len: usize, text_len: usize) -> Option<usize> {
    let payload = aad_len.checked_add(text_len)?;
    if payload > MAX_SEALED_PAYLOAD {
        return None;
    }
    payload.checked_add(SEALED_DATA_HEADER_SIZE)
}

/// `sgx_sealed_data_t` with its payload.
///
/// The payload and `plain_text_offset` are private so that `plain_text_offset <= payload_size`
/// and `payload_size <= MAX_SEALED_PAYLOAD` always hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealedData {
    /// Offset 0: the KEYREQUEST that derives the seal key.
    pub key_request: Keyrequest,
    plain_text_offset: u32,
    /// Offset 516.
    pub _reserved1: [u8; 12],
    /// Offset 532 (`aes_data.reserved`).
    pub _reserved2: [u8; 12],
    /// Offset 544: AES-GCM tag over the encrypted text with the additional MAC text as AAD.
    pub payload_tag: [u8; 16],
    payload: Vec<u8>,
}

impl SealedData {
    /// A blob whose payload is `encrypted_text` followed by `additional_mac_text`, reserved bytes
    /// zero. Fails if the payload would exceed [`MAX_SEALED_PAYLOAD`].
    pub fn new(
        key_request: Keyrequest,
        payload_tag: [u8; 16],
        encrypted_text: &[u8],
        additional_mac_text: &[u8],
    ) -> Result<Self, DecodeError> {
        let (plain_text_offset, length) =
            payload_lengths(encrypted_text.len(), additional_mac_text.len())?;
        let mut payload = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        payload.extend_from_slice(encrypted_text);
        payload.extend_from_slice(additional_mac_text);
        Ok(SealedData {
            key_request,
            plain_text_offset,
            _reserved1: [0; 12],
            _reserved2: [0; 12],
            payload_tag,
            payload,
        })
    }

    /// Appends the fixed part of a blob (everything before the payload, 560 bytes) whose payload
    /// will be `encrypted_text_len` bytes of encrypted text followed by `additional_mac_text_len`
    /// bytes of additional MAC text, reserved bytes zero: what [`Codec::encode`] writes before the
    /// payload of the blob [`SealedData::new`] makes of such texts. The caller appends the
    /// payload; the tag can be written later at [`SEALED_DATA_TAG_OFFSET`]. Reserves room for the
    /// payload too. Fails, writing nothing, if the payload would exceed [`MAX_SEALED_PAYLOAD`].
    pub fn encode_header(
        key_request: &Keyrequest,
        payload_tag: &[u8; 16],
        encrypted_text_len: usize,
        additional_mac_text_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let (plain_text_offset, payload_size) =
            payload_lengths(encrypted_text_len, additional_mac_text_len)?;
        out.reserve(SEALED_DATA_HEADER_SIZE + usize::try_from(payload_size).unwrap_or(0));
        encode_fixed(
            key_request,
            plain_text_offset,
            &[0; 12],
            payload_size,
            &[0; 12],
            payload_tag,
            out,
        );
        Ok(())
    }

    /// The blob borrowed: the same fields, the payload not copied.
    pub fn borrowed(&self) -> SealedDataRef<'_> {
        SealedDataRef {
            key_request: self.key_request.clone(),
            plain_text_offset: self.plain_text_offset,
            _reserved1: self._reserved1,
            _reserved2: self._reserved2,
            payload_tag: self.payload_tag,
            payload: &self.payload,
        }
    }

    /// Offset 512: where the additional MAC text starts, which is the encrypted text's length.
    pub fn plain_text_offset(&self) -> u32 {
        self.plain_text_offset
    }

    /// Offset 528: the payload's length.
    pub fn payload_size(&self) -> u32 {
        // The payload never exceeds MAX_SEALED_PAYLOAD, which fits in a u32.
        u32::try_from(self.payload.len()).unwrap_or(u32::MAX)
    }

    /// Offset 560: the whole payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn split(&self) -> usize {
        usize::try_from(self.plain_text_offset)
            .unwrap_or(usize::MAX)
            .min(self.payload.len())
    }

    /// The encrypted text: `payload[..plain_text_offset]`.
    pub fn encrypted_text(&self) -> &[u8] {
        let at = self.split();
        &self.payload[..at]
    }

    /// The encrypted text, to encrypt or decrypt it in place.
    pub fn encrypted_text_mut(&mut self) -> &mut [u8] {
        let at = self.split();
        &mut self.payload[..at]
    }

    /// The additional MAC text, stored in clear: `payload[plain_text_offset..]`.
    pub fn additional_mac_text(&self) -> &[u8] {
        let at = self.split();
        &self.payload[at..]
    }

    /// The size of the encoded blob.
    pub fn encoded_len(&self) -> usize {
        SEALED_DATA_HEADER_SIZE + self.payload.len()
    }
}

impl Codec for SealedData {
    const NAME: &'static str = "sgx_sealed_data_t";

    fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        encode_fixed(
            &self.key_request,
            self.plain_text_offset,
            &self._reserved1,
            self.payload_size(),
            &self._reserved2,
            &self.payload_tag,
            out,
        );
        out.extend_from_slice(&self.payload);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        SealedDataRef::read(r).map(|b| b.to_sealed_data())
    }
}

/// The encrypted text's length as `plain_text_offset` and the payload's as `payload_size`, or
/// the refusal of a payload larger than [`MAX_SEALED_PAYLOAD`].
fn payload_lengths(text_len: usize, aad_len: usize) -> Result<(u32, u32), DecodeError> {
    let length = text_len.saturating_add(aad_len);
    let too_large = || DecodeError::TooLarge {
        what: "sgx_sealed_data_t.aes_data.payload",
        length,
        limit: MAX_SEALED_PAYLOAD,
    };
    if length > MAX_SEALED_PAYLOAD {
        return Err(too_large());
    }
    let plain_text_offset = u32::try_from(text_len).map_err(|_| too_large())?;
    let payload_size = u32::try_from(length).map_err(|_| too_large())?;
    Ok((plain_text_offset, payload_size))
}

/// Appends the 560 bytes before the payload.
fn encode_fixed(
    key_request: &Keyrequest,
    plain_text_offset: u32,
    reserved1: &[u8; 12],
    payload_size: u32,
    reserved2: &[u8; 12],
    payload_tag: &[u8; 16],
    out: &mut Vec<u8>,
) {
    key_request.encode(out);
    out.extend_from_slice(&plain_text_offset.to_le_bytes());
    out.extend_from_slice(reserved1);
    out.extend_from_slice(&payload_size.to_le_bytes());
    out.extend_from_slice(reserved2);
    out.extend_from_slice(payload_tag);
}

/// `sgx_sealed_data_t` read in place: the checks of [`SealedData`]'s decoding (the two share
/// them), the payload borrowed from the bytes it was read from instead of copied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealedDataRef<'a> {
    /// Offset 0: the KEYREQUEST that derives the seal key.
    pub key_request: Keyrequest,
    plain_text_offset: u32,
    /// Offset 516.
    pub _reserved1: [u8; 12],
    /// Offset 532 (`aes_data.reserved`).
    pub _reserved2: [u8; 12],
    /// Offset 544: AES-GCM tag over the encrypted text with the additional MAC text as AAD.
    pub payload_tag: [u8; 16],
    payload: &'a [u8],
}

impl<'a> SealedDataRef<'a> {
    /// Reads a whole blob: refuses truncated or padded bytes, a `payload_size` over
    /// [`MAX_SEALED_PAYLOAD`] and a `plain_text_offset` past the payload.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.expect_end(SealedData::NAME)?;
        Ok(v)
    }

    /// Reads one blob from `r`, which may hold more after it.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let key_request = Keyrequest::read(r)?;
        let plain_text_offset = r.u32("sgx_sealed_data_t.plain_text_offset")?;
        let _reserved1 = r.array("sgx_sealed_data_t.reserved")?;
        let payload_size = r.u32("sgx_sealed_data_t.aes_data.payload_size")?;
        let length = usize::try_from(payload_size).unwrap_or(usize::MAX);
        if length > MAX_SEALED_PAYLOAD {
            return Err(DecodeError::TooLarge {
                what: "sgx_sealed_data_t.aes_data.payload_size",
                length,
                limit: MAX_SEALED_PAYLOAD,
            });
        }
        if plain_text_offset > payload_size {
            return Err(DecodeError::Invalid {
                what: "sgx_sealed_data_t.plain_text_offset",
                reason: format!(
                    "{plain_text_offset} is past the end of the payload ({payload_size} bytes)"
                ),
            });
        }
        let _reserved2 = r.array("sgx_sealed_data_t.aes_data.reserved")?;
        let payload_tag = r.array("sgx_sealed_data_t.aes_data.payload_tag")?;
        let payload = r.take("sgx_sealed_data_t.aes_data.payload", length)?;
        Ok(SealedDataRef {
            key_request,
            plain_text_offset,
            _reserved1,
            _reserved2,
            payload_tag,
            payload,
        })
    }

    /// The blob with its payload copied.
    pub fn to_sealed_data(&self) -> SealedData {
        SealedData {
            key_request: self.key_request.clone(),
            plain_text_offset: self.plain_text_offset,
            _reserved1: self._reserved1,
            _reserved2: self._reserved2,
            payload_tag: self.payload_tag,
            payload: self.payload.to_vec(),
        }
    }

    /// Offset 512: where the additional MAC text starts, which is the encrypted text's length.
    pub fn plain_text_offset(&self) -> u32 {
        self.plain_text_offset
    }

    /// Offset 528: the payload's length.
    pub fn payload_size(&self) -> u32 {
        // The payload never exceeds MAX_SEALED_PAYLOAD, which fits in a u32.
        u32::try_from(self.payload.len()).unwrap_or(u32::MAX)
    }

    /// Offset 560: the whole payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    fn split(&self) -> usize {
        usize::try_from(self.plain_text_offset)
            .unwrap_or(usize::MAX)
            .min(self.payload.len())
    }

    /// The encrypted text: `payload[..plain_text_offset]`.
    pub fn encrypted_text(&self) -> &'a [u8] {
        self.payload.split_at(self.split()).0
    }

    /// The additional MAC text, stored in clear: `payload[plain_text_offset..]`.
    pub fn additional_mac_text(&self) -> &'a [u8] {
        self.payload.split_at(self.split()).1
    }

    /// The size of the encoded blob.
    pub fn encoded_len(&self) -> usize {
        SEALED_DATA_HEADER_SIZE + self.payload.len()
    }
}

const _: () = assert!(SEALED_DATA_HEADER_SIZE == Keyrequest::SIZE + 48);
const _: () = assert!(SEALED_DATA_TAG_OFFSET + 16 == SEALED_DATA_HEADER_SIZE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyrequest::{KeyName, KeyPolicy};

    fn sample() -> SealedData {
        let key_request = Keyrequest {
            keyname: KeyName::SEAL_KEY,
            keypolicy: KeyPolicy::MRSIGNER,
            isvsvn: 3,
            keyid: [0x5a; 32],
            ..Keyrequest::default()
        };
        SealedData::new(key_request, [0x77; 16], b"ciphertext!", b"label").unwrap()
    }

    #[test]
    fn accepts_a_sealed_blob_at_the_sdk_offsets() {
        let s = sample();
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), sealed_data_size(5, 11).unwrap());
        assert_eq!(bytes.len(), s.encoded_len());
        assert_eq!(bytes[0], 4); // SEAL_KEY
        assert_eq!(&bytes[512..516], &11u32.to_le_bytes());
        assert_eq!(&bytes[528..532], &16u32.to_le_bytes());
        assert_eq!(&bytes[544..560], &[0x77; 16]);
        assert_eq!(&bytes[560..571], b"ciphertext!");
        assert_eq!(&bytes[571..], b"label");
        let p = SealedData::from_bytes(&bytes).unwrap();
        assert_eq!(p, s);
        assert_eq!(p.encrypted_text(), b"ciphertext!");
        assert_eq!(p.additional_mac_text(), b"label");
        assert_eq!(p.plain_text_offset(), 11);
        assert_eq!(p.payload_size(), 16);
    }

    #[test]
    fn accepts_empty_text_and_empty_aad() {
        for (text, aad) in [(&b""[..], &b"aad"[..]), (b"txt", b""), (b"", b"")] {
            let s = SealedData::new(Keyrequest::default(), [0; 16], text, aad).unwrap();
            let p = SealedData::from_bytes(&s.to_bytes()).unwrap();
            assert_eq!(p.encrypted_text(), text);
            assert_eq!(p.additional_mac_text(), aad);
        }
    }

    #[test]
    fn encrypts_in_place_through_the_mutable_accessor() {
        let mut s = sample();
        s.encrypted_text_mut().iter_mut().for_each(|b| *b ^= 0xff);
        assert_eq!(s.encrypted_text()[0], b'c' ^ 0xff);
        assert_eq!(s.additional_mac_text(), b"label");
    }

    #[test]
    fn rejects_truncated_and_padded_blobs() {
        let mut bytes = sample().to_bytes();
        assert!(matches!(
            SealedData::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            SealedDataRef::parse(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            SealedData::from_bytes(&bytes[..559]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            SealedDataRef::parse(&bytes[..559]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            SealedData::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            SealedDataRef::parse(&bytes),
            Err(DecodeError::TrailingBytes {
                count: 1,
                what: "sgx_sealed_data_t",
                ..
            })
        ));
    }

    #[test]
    fn rejects_a_plain_text_offset_past_the_payload() {
        let mut bytes = sample().to_bytes();
        bytes[512..516].copy_from_slice(&17u32.to_le_bytes());
        let err = SealedData::from_bytes(&bytes).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Invalid {
                what: "sgx_sealed_data_t.plain_text_offset",
                ..
            }
        ));
        assert!(err.to_string().contains("past the end"));
        assert_eq!(SealedDataRef::parse(&bytes).unwrap_err(), err);
        // The offset may equal the payload size (no additional MAC text).
        bytes[512..516].copy_from_slice(&16u32.to_le_bytes());
        assert!(SealedData::from_bytes(&bytes).is_ok());
        let r = SealedDataRef::parse(&bytes).unwrap();
        assert_eq!(
            (r.encrypted_text().len(), r.additional_mac_text()),
            (16, &b""[..])
        );
    }

    #[test]
    fn rejects_a_payload_size_over_the_cap() {
        let mut bytes = sample().to_bytes();
        let over = u32::try_from(MAX_SEALED_PAYLOAD + 1).unwrap();
        bytes[528..532].copy_from_slice(&over.to_le_bytes());
        assert!(matches!(
            SealedData::from_bytes(&bytes),
            Err(DecodeError::TooLarge {
                limit: MAX_SEALED_PAYLOAD,
                ..
            })
        ));
        assert!(matches!(
            SealedDataRef::parse(&bytes),
            Err(DecodeError::TooLarge {
                limit: MAX_SEALED_PAYLOAD,
                ..
            })
        ));
        bytes[528..532].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SealedData::from_bytes(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            SealedDataRef::parse(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn reads_a_blob_in_place_with_the_same_fields() {
        let s = sample();
        let bytes = s.to_bytes();
        let r = SealedDataRef::parse(&bytes).unwrap();
        assert_eq!(r, s.borrowed());
        assert_eq!(r.to_sealed_data(), s);
        assert_eq!(r.encrypted_text(), b"ciphertext!");
        assert_eq!(r.additional_mac_text(), b"label");
        assert_eq!((r.plain_text_offset(), r.payload_size()), (11, 16));
        assert_eq!(r.encoded_len(), bytes.len());
        // Borrowed, not copied.
        assert!(std::ptr::eq(r.payload().as_ptr(), bytes[560..].as_ptr()));
    }

    #[test]
    fn encodes_the_header_alone_as_the_whole_blob_begins() {
        let s = sample();
        let mut out = vec![0xee];
        SealedData::encode_header(&s.key_request, &[0x77; 16], 11, 5, &mut out).unwrap();
        assert_eq!(out.len(), 1 + SEALED_DATA_HEADER_SIZE);
        out.extend_from_slice(b"ciphertext!label");
        assert_eq!(out[1..], s.to_bytes()[..]);
        assert_eq!(&out[1 + SEALED_DATA_TAG_OFFSET..][..16], &[0x77; 16]);
    }

    #[test]
    fn rejects_a_header_for_a_payload_over_the_cap() {
        let mut out = Vec::new();
        for (text, aad) in [
            (MAX_SEALED_PAYLOAD + 1, 0),
            (0, MAX_SEALED_PAYLOAD + 1),
            (MAX_SEALED_PAYLOAD, 1),
            (usize::MAX, usize::MAX),
        ] {
            assert!(matches!(
                SealedData::encode_header(&Keyrequest::default(), &[0; 16], text, aad, &mut out),
                Err(DecodeError::TooLarge {
                    limit: MAX_SEALED_PAYLOAD,
                    ..
                })
            ));
        }
        assert!(out.is_empty());
        SealedData::encode_header(
            &Keyrequest::default(),
            &[0; 16],
            MAX_SEALED_PAYLOAD,
            0,
            &mut Vec::new(),
        )
        .unwrap();
    }

    #[test]
    fn computes_sizes_like_the_sdk() {
        assert_eq!(sealed_data_size(0, 0), Some(560));
        assert_eq!(sealed_data_size(10, 20), Some(590));
        assert_eq!(
            sealed_data_size(MAX_SEALED_PAYLOAD, 0),
            Some(MAX_SEALED_PAYLOAD + 560)
        );
        assert_eq!(sealed_data_size(MAX_SEALED_PAYLOAD, 1), None);
        assert_eq!(sealed_data_size(usize::MAX, 1), None);
        let big = vec![0u8; MAX_SEALED_PAYLOAD + 1];
        assert!(matches!(
            SealedData::new(Keyrequest::default(), [0; 16], &big, b""),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
