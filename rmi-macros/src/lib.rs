//! The interface compiler of rmi: `#[remote]` turns a trait into a remote interface.
//!
//! Use it through `rmi-runtime`, which re-exports it; see that crate for a guide. This crate holds only
//! the attribute. The pipeline follows serde_derive and thiserror: parse into a model that keeps the
//! user's tokens for spans (`attr.rs`, `model.rs`), check across methods (`validate.rs`), then generate
//! one file per generated item (`expand/`). Errors are collected, so every problem is reported at once.
#![warn(missing_docs, unreachable_pub)]

mod attr;
mod errors;
mod expand;
mod model;
mod validate;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Makes a trait a remote interface: generates a client stub `{Trait}Client`, a server skeleton
/// `{Trait}Skeleton<S>` and an operation enum `{Trait}Op` beside it.
///
/// Every method must be an `async fn` taking `&self`, with plainly named arguments whose types (and
/// the return type) implement serde's `Serialize` and `Deserialize`. A method returning
/// `Result<T, E>` sends its `Err(E)` as a typed application error. Arguments and values written
/// `Vec<u8>` travel as postcard byte strings: the same bytes as serde's sequence of `u8`, in one copy.
///
/// Arguments: `#[remote(version = N)]` (default 1), `#[remote(name = "...")]` (interface name, default
/// the trait's name), `#[remote(crate = "path")]` (where `rmi-runtime` is, default `::rmi_runtime`).
/// On a method, `#[op(id = N)]` pins its operation id (default: derived from the method name) and
/// `#[op(timeout = "250ms")]` sets its default deadline (humantime syntax). Invocation semantics:
/// at-most-once by default, `#[idempotent]` for at-least-once, `#[oneway]` for maybe (no reply; the
/// method must return nothing). See `docs/SEMANTICS.md`.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemTrait);
    expand::remote(args.into(), item).into()
}
