//! # coffer-interface-macros
//!
//! `#[ecalls]` on a trait declares an enclave's ECALLs; `#[ocalls]` declares the OCALLs its host
//! provides. From the one trait the macro generates:
//!
//! - `<TRAIT>_INTERFACE`: an `InterfaceInfo` with the trait's name, its call table and an
//!   interface id — SHA-256 of the trait's canonical text, so any change to a method's name,
//!   order, argument or result types gives another id, and a host and an enclave built from
//!   different versions of the trait are told apart when the enclave is created.
//! - `<Trait>Proxy<T>`: the caller's side, one method per call, taking the arguments by value and
//!   returning the method's result wrapped in `Result<_, TransportError>`.
//! - `<trait>_dispatch(imp, call_id, input)`: the callee's side, which decodes the arguments,
//!   calls the implementation and encodes its result.
//!
//! Methods take `&self` and arguments that are `serde` types; a method marked `#[switchless]` asks
//! the transport for a switchless call. This replaces EDL files and `edger8r`.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use sha2::{Digest, Sha256};
use syn::{FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, parse_macro_input};

/// Declares the ECALLs of an enclave. See the crate documentation.
#[proc_macro_attribute]
pub fn ecalls(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Side::Ecall)
}

/// Declares the OCALLs a host provides to its enclave. See the crate documentation.
#[proc_macro_attribute]
pub fn ocalls(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Side::Ocall)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ecall,
    Ocall,
}

struct Method {
    name: Ident,
    args: Vec<(Ident, syn::Type)>,
    output: TokenStream2,
    switchless: bool,
}

fn expand(attr: TokenStream, item: TokenStream, side: Side) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(Span::call_site(), "this attribute takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut tr = parse_macro_input!(item as ItemTrait);
    match generate(&mut tr, side) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn methods(tr: &mut ItemTrait) -> syn::Result<Vec<Method>> {
    let mut out = Vec::new();
    for item in &mut tr.items {
        let TraitItem::Fn(f) = item else {
            return Err(syn::Error::new_spanned(
                item,
                "an enclave interface trait may only contain methods",
            ));
        };
        let before = f.attrs.len();
        f.attrs.retain(|a| !a.path().is_ident("switchless"));
        let switchless = f.attrs.len() != before;
        let sig = &f.sig;
        if !sig.generics.params.is_empty() || sig.asyncness.is_some() || f.default.is_some() {
            return Err(syn::Error::new_spanned(
                sig,
                "interface methods must be plain, non-generic, non-async and without a default body",
            ));
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r))
                if matches!(r.kind, syn::ReceiverKind::Reference(_, _, None)) => {}
            _ => {
                return Err(syn::Error::new_spanned(
                    sig,
                    "interface methods take `&self` first",
                ));
            }
        }
        let mut args = Vec::new();
        for a in inputs {
            let FnArg::Typed(pt) = a else {
                return Err(syn::Error::new_spanned(a, "unexpected receiver"));
            };
            let Pat::Ident(pi) = &*pt.pat else {
                return Err(syn::Error::new_spanned(
                    &pt.pat,
                    "interface arguments must be plain names",
                ));
            };
            args.push((pi.ident.clone(), (*pt.ty).clone()));
        }
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, t) => quote!(#t),
        };
        out.push(Method {
            name: sig.ident.clone(),
            args,
            output,
            switchless,
        });
    }
    Ok(out)
}

fn to_snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn generate(tr: &mut ItemTrait, side: Side) -> syn::Result<TokenStream2> {
    let ms = methods(tr)?;
    let trait_name = tr.ident.clone();
    let vis = tr.vis.clone();
    let snake = to_snake(&trait_name.to_string());
    let info_name = format_ident!("{}_INTERFACE", snake.to_uppercase());
    let proxy_name = format_ident!("{}Proxy", trait_name);
    let dispatch_name = format_ident!("{}_dispatch", snake);
    let kind = match side {
        Side::Ecall => "ecalls",
        Side::Ocall => "ocalls",
    };

    // The canonical text the interface id is computed from.
    let mut canonical = format!("coffer-interface/1 {kind} {trait_name}\n");
    for (i, m) in ms.iter().enumerate() {
        let args: Vec<String> = m
            .args
            .iter()
            .map(|(n, t)| format!("{n}: {}", quote!(#t)))
            .collect();
        canonical.push_str(&format!(
            "{} {}({}) -> {}{}\n",
            i + 1,
            m.name,
            args.join(", "),
            m.output,
            if m.switchless { " switchless" } else { "" }
        ));
    }
    let id: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
    let id_bytes = id.iter();

    let call_infos = ms.iter().enumerate().map(|(i, m)| {
        let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let name = m.name.to_string();
        let sl = m.switchless;
        quote!(::coffer_interface::CallInfo { id: #id, name: #name, switchless: #sl })
    });

    let proxy_methods = ms.iter().enumerate().map(|(i, m)| {
        let name = &m.name;
        let arg_names: Vec<_> = m.args.iter().map(|(n, _)| n).collect();
        let arg_types: Vec<_> = m.args.iter().map(|(_, t)| t).collect();
        let out = &m.output;
        let doc = format!("Calls `{trait_name}::{name}` across the enclave boundary.");
        quote! {
            #[doc = #doc]
            pub fn #name(&self, #(#arg_names: #arg_types),*) -> ::core::result::Result<#out, ::coffer_interface::TransportError> {
                let call = &#info_name.calls[#i];
                let input = ::coffer_interface::encode(&(#(#arg_names,)*))?;
                let output = self.transport.call(call, &input)?;
                ::coffer_interface::decode::<#out>(&output)
            }
        }
    });

    let dispatch_arms = ms.iter().enumerate().map(|(i, m)| {
        let name = &m.name;
        let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let arg_names: Vec<_> = m.args.iter().map(|(n, _)| n).collect();
        let arg_types: Vec<_> = m.args.iter().map(|(_, t)| t).collect();
        quote! {
            #id => {
                let (#(#arg_names,)*): (#(#arg_types,)*) = ::coffer_interface::decode_args(input)?;
                ::coffer_interface::encode_result(&imp.#name(#(#arg_names),*))
            }
        }
    });

    let side_doc = match side {
        Side::Ecall => "the host calls into the enclave",
        Side::Ocall => "the enclave calls out to its host",
    };
    let info_doc = format!("The `{trait_name}` interface ({side_doc}): its id and call table.");
    let proxy_doc = format!("The caller's side of `{trait_name}` ({side_doc}).");
    let dispatch_doc = format!(
        "The callee's side of `{trait_name}`: decodes a call, runs it on `imp`, encodes the result."
    );

    Ok(quote! {
        #tr

        #[doc = #info_doc]
        #vis const #info_name: ::coffer_interface::InterfaceInfo = ::coffer_interface::InterfaceInfo {
            name: stringify!(#trait_name),
            id: [#(#id_bytes),*],
            calls: &[#(#call_infos),*],
        };

        #[doc = #proxy_doc]
        #[derive(Debug, Clone)]
        #vis struct #proxy_name<T> {
            transport: T,
        }

        impl<T: ::coffer_interface::Transport> #proxy_name<T> {
            /// Wraps a transport (a host's enclave handle, or the enclave's OCALL context).
            pub fn new(transport: T) -> Self {
                Self { transport }
            }

            /// The transport this proxy calls through.
            pub fn transport(&self) -> &T {
                &self.transport
            }

            #(#proxy_methods)*
        }

        #[doc = #dispatch_doc]
        #vis fn #dispatch_name<I: #trait_name + ?Sized>(
            imp: &I,
            call_id: u32,
            input: &[u8],
        ) -> ::core::result::Result<::std::vec::Vec<u8>, ::coffer_interface::DispatchError> {
            match call_id {
                #(#dispatch_arms)*
                other => Err(::coffer_interface::DispatchError::UnknownCall(other)),
            }
        }
    })
}
