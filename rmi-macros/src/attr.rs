//! The attribute arguments: `#[remote(...)]` on the trait and `#[op(...)]` on methods.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Attribute, LitInt, LitStr, Path};

use crate::errors::Errors;

/// Arguments of `#[remote(version = N, name = "...", crate = "...")]`.
pub(crate) struct RemoteArgs {
    /// Interface version, default 1.
    pub(crate) version: u32,
    /// Interface name, default the trait's name.
    pub(crate) name: Option<LitStr>,
    /// Path to the runtime crate, default `::rmi_runtime`.
    pub(crate) krate: Option<Path>,
}

impl RemoteArgs {
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut out = RemoteArgs { version: 1, name: None, krate: None };
        let mut seen = Vec::new();
        let parser = syn::meta::parser(|meta| {
            if let Some(ident) = meta.path.get_ident() {
                if seen.contains(ident) {
                    return Err(meta.error(format!("`{ident}` is set twice")));
                }
                seen.push(ident.clone());
            }
            if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                out.version = lit.base10_parse::<u32>()?;
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "interface name must not be empty"));
                }
                out.name = Some(lit);
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                out.krate = Some(lit.parse()?);
            } else {
                return Err(meta.error("unknown `remote` argument; expected `version`, `name` or `crate`"));
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            errors.add(err);
        }
        out
    }
}

/// Arguments of `#[op(id = N, timeout = "...")]` on a method, and its `#[oneway]` or
/// `#[idempotent]` marker.
pub(crate) struct OpArgs {
    /// An explicitly pinned operation id, with the span of its literal.
    pub(crate) id: Option<(u32, Span)>,
    /// The method's default deadline.
    pub(crate) timeout: Option<Duration>,
    /// `#[oneway]` or `#[idempotent]`, with the attribute for errors.
    pub(crate) semantics: Option<(SemanticsAttr, Attribute)>,
}

/// A method attribute choosing invocation semantics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemanticsAttr {
    /// `#[oneway]`: maybe.
    Oneway,
    /// `#[idempotent]`: at-least-once.
    Idempotent,
}

impl SemanticsAttr {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SemanticsAttr::Oneway => ONEWAY_ATTR,
            SemanticsAttr::Idempotent => IDEMPOTENT_ATTR,
        }
    }
}

/// The name of the method attribute `#[remote]` consumes.
pub(crate) const OP_ATTR: &str = "op";
/// `#[oneway]`.
pub(crate) const ONEWAY_ATTR: &str = "oneway";
/// `#[idempotent]`.
pub(crate) const IDEMPOTENT_ATTR: &str = "idempotent";

impl OpArgs {
    /// Parses every `#[op(...)]`, `#[oneway]` and `#[idempotent]` among `attrs` (and reports a
    /// repeated or conflicting one).
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut out = OpArgs { id: None, timeout: None, semantics: None };
        for attr in attrs {
            let semantics = if attr.path().is_ident(ONEWAY_ATTR) {
                SemanticsAttr::Oneway
            } else if attr.path().is_ident(IDEMPOTENT_ATTR) {
                SemanticsAttr::Idempotent
            } else {
                continue;
            };
            if attr.meta.require_path_only().is_err() {
                errors.push(&attr.meta, format!("`#[{}]` takes no arguments", semantics.name()));
            }
            match &out.semantics {
                Some((first, _)) if *first == semantics => {
                    errors.push(attr, format!("`#[{}]` is given twice", semantics.name()));
                }
                Some((first, _)) => errors.push(
                    attr,
                    format!(
                        "a method is either `#[oneway]` or `#[idempotent]`, not both (it is already \
                         `#[{}]`)",
                        first.name()
                    ),
                ),
                None => out.semantics = Some((semantics, attr.clone())),
            }
        }
        for attr in attrs.iter().filter(|a| a.path().is_ident(OP_ATTR)) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("id") {
                    let lit: LitInt = meta.value()?.parse()?;
                    let id = lit.base10_parse::<u32>()?;
                    if out.id.replace((id, lit.span())).is_some() {
                        return Err(syn::Error::new(lit.span(), "operation id is set twice"));
                    }
                    Ok(())
                } else if meta.path.is_ident("timeout") {
                    let lit: LitStr = meta.value()?.parse()?;
                    let timeout = humantime::parse_duration(&lit.value()).map_err(|e| {
                        syn::Error::new(
                            lit.span(),
                            format!(
                                "invalid timeout: {e}; write a duration like \"250ms\", \"5s\" or \"1m\""
                            ),
                        )
                    })?;
                    if timeout.is_zero() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "a method's timeout must be longer than zero",
                        ));
                    }
                    if out.timeout.replace(timeout).is_some() {
                        return Err(syn::Error::new(lit.span(), "timeout is set twice"));
                    }
                    Ok(())
                } else {
                    Err(meta.error("unknown `op` argument; expected `id = N` or `timeout = \"DURATION\"`"))
                }
            });
            if let Err(err) = result {
                errors.add(err);
            }
        }
        out
    }
}

/// Whether `attr` is one that `#[remote]` consumes (and so must not re-emit).
pub(crate) fn is_ours(attr: &Attribute) -> bool {
    [OP_ATTR, ONEWAY_ATTR, IDEMPOTENT_ATTR].iter().any(|name| attr.path().is_ident(name))
}
