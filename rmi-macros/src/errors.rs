//! Collects every error of one expansion, so the user sees all of them at once.

use std::fmt::Display;

use quote::ToTokens;

/// An accumulator of `syn::Error`s, each spanned at the user's tokens.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error spanned at `at`.
    pub(crate) fn push(&mut self, at: impl ToTokens, msg: impl Display) {
        self.add(syn::Error::new_spanned(at, msg));
    }

    /// Records an already-built error.
    pub(crate) fn add(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// `Ok` if nothing was recorded, otherwise all errors combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
