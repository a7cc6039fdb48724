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
//! enclave SDK.

use crate::codec::{Codec, DecodeError, FixedSize, Reader};
use crate::keyrequest::Keyrequest;

/// Size of the fixed part before the payload (the SDK's `sizeof(sgx_sealed_data_t)`).
pub const SEALED_DATA_HEADER_SIZE: usize = 560;

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
        let length = encrypted_text
            .len()
            .saturating_add(additional_mac_text.len());
        let too_large = || DecodeError::TooLarge {
            what: "sgx_sealed_data_t.aes_data.payload",
            length,
            limit: MAX_SEALED_PAYLOAD,
        };
        if length > MAX_SEALED_PAYLOAD {
            return Err(too_large());
        }
        let plain_text_offset = u32::try_from(encrypted_text.len()).map_err(|_| too_large())?;
        let mut payload = Vec::with_capacity(length);
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
        self.key_request.encode(out);
        out.extend_from_slice(&self.plain_text_offset.to_le_bytes());
        out.extend_from_slice(&self._reserved1);
        out.extend_from_slice(&self.payload_size().to_le_bytes());
        out.extend_from_slice(&self._reserved2);
        out.extend_from_slice(&self.payload_tag);
        out.extend_from_slice(&self.payload);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
        let payload = r
            .take("sgx_sealed_data_t.aes_data.payload", length)?
            .to_vec();
        Ok(SealedData {
            key_request,
            plain_text_offset,
            _reserved1,
            _reserved2,
            payload_tag,
            payload,
        })
    }
}

const _: () = assert!(SEALED_DATA_HEADER_SIZE == Keyrequest::SIZE + 48);

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
            SealedData::from_bytes(&bytes[..559]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            SealedData::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
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
        // The offset may equal the payload size (no additional MAC text).
        bytes[512..516].copy_from_slice(&16u32.to_le_bytes());
        assert!(SealedData::from_bytes(&bytes).is_ok());
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
        bytes[528..532].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SealedData::from_bytes(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
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
