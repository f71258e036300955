//! The interface model: the trait, parsed and checked shape by shape, with spans kept for errors.

use proc_macro2::{Ident, Span};
use quote::format_ident;
use syn::{
    Attribute, FnArg, GenericArgument, ItemTrait, Pat, PathArguments, ReceiverKind, ReturnType, Safety,
    TraitItem, TraitItemFn, Type, TypePath,
};

use crate::attr::{OpArgs, RemoteArgs, SemanticsAttr};
use crate::errors::Errors;

/// A `#[remote]` trait.
pub(crate) struct Interface<'a> {
    /// The trait as the user wrote it.
    pub(crate) original: &'a ItemTrait,
    /// The interface name on the wire (and its span, for errors).
    pub(crate) name: String,
    /// FNV-1a of the name.
    pub(crate) id: u64,
    /// `#[remote(version = N)]`.
    pub(crate) version: u32,
    /// Path to the runtime crate.
    pub(crate) krate: syn::Path,
    /// The methods, in declaration order.
    pub(crate) methods: Vec<Method<'a>>,
}

/// One remote method.
pub(crate) struct Method<'a> {
    /// The method as the user wrote it.
    pub(crate) original: &'a TraitItemFn,
    /// The method's name.
    pub(crate) ident: &'a Ident,
    /// The name of its variant in the `{Trait}Op` enum.
    pub(crate) variant: Ident,
    /// Its arguments, after `&self`.
    pub(crate) args: Vec<Arg<'a>>,
    /// What it returns.
    pub(crate) output: Output<'a>,
    /// Its operation id.
    pub(crate) op: u32,
    /// Where the op id came from: the `#[op(id = N)]` literal, or the method name.
    pub(crate) op_span: Span,
    /// Whether the op id was pinned with `#[op(id = N)]`.
    pub(crate) op_pinned: bool,
    /// `#[oneway]` or `#[idempotent]`; `None` is at-most-once.
    pub(crate) semantics: Option<SemanticsAttr>,
    /// `#[op(timeout = "...")]`.
    pub(crate) timeout: Option<std::time::Duration>,
}

/// One argument of a remote method.
pub(crate) struct Arg<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// Whether `ty` is written `Vec<u8>`: it travels as a byte string ([`is_byte_vec`]).
    pub(crate) bytes: bool,
}

/// The return type of a remote method.
pub(crate) enum Output<'a> {
    /// No return type: `()`.
    Unit,
    /// Any other type, sent by value.
    Value(&'a Type),
    /// `Result<T, E>`: `E` is the method's application error.
    Result { whole: &'a Type, ok: &'a Type, err: &'a Type },
}

impl<'a> Interface<'a> {
    /// Builds the model, recording every unsupported shape in `errors`.
    pub(crate) fn from_syn(item: &'a ItemTrait, args: RemoteArgs, errors: &mut Errors) -> Self {
        if let Some(unsafety) = &item.unsafety {
            errors.push(unsafety, "remote traits cannot be `unsafe`");
        }
        if !item.generics.params.is_empty() {
            errors.push(&item.generics, "remote traits cannot be generic");
        }
        if let Some(w) = &item.generics.where_clause {
            errors.push(w, "remote traits cannot have `where` clauses");
        }
        let methods = item
            .items
            .iter()
            .filter_map(|it| match it {
                TraitItem::Fn(f) => Method::from_syn(f, errors),
                other => {
                    errors.push(other, "remote traits may only contain methods");
                    None
                }
            })
            .collect();
        let name = args.name.map_or_else(|| item.ident.to_string(), |n| n.value());
        let krate = args.krate.unwrap_or_else(|| syn::parse_quote!(::rmi_runtime));
        Interface {
            original: item,
            id: rmi_core::InterfaceId::from_name(&name).0,
            name,
            version: args.version,
            krate,
            methods,
        }
    }

    /// `{Trait}Client`, `{Trait}Skeleton`, `{Trait}Op`, spanned at the trait's name.
    pub(crate) fn item_ident(&self, suffix: &str) -> Ident {
        format_ident!("{}{}", self.original.ident, suffix)
    }

    /// Whether every method returns `Result<_, _>`, so the client can implement the trait itself.
    pub(crate) fn all_fallible(&self) -> bool {
        self.methods.iter().all(|m| matches!(m.output, Output::Result { .. }))
    }
}

impl<'a> Method<'a> {
    fn from_syn(f: &'a TraitItemFn, errors: &mut Errors) -> Option<Self> {
        let sig = &f.sig;
        let mut errs = Vec::new();
        if sig.asyncness.is_none() {
            errs.push(syn::Error::new_spanned(sig.fn_token, "remote methods must be `async fn`"));
        }
        if let Some(c) = &sig.constness {
            errs.push(syn::Error::new_spanned(c, "remote methods cannot be `const`"));
        }
        if let Safety::Unsafe(u) = &sig.safety {
            errs.push(syn::Error::new_spanned(u, "remote methods cannot be `unsafe`"));
        }
        if let Some(abi) = &sig.abi {
            errs.push(syn::Error::new_spanned(abi, "remote methods cannot have an ABI"));
        }
        if let Some(v) = &sig.variadic {
            errs.push(syn::Error::new_spanned(v, "remote methods cannot be variadic"));
        }
        if !sig.generics.params.is_empty() {
            errs.push(syn::Error::new_spanned(&sig.generics, "remote methods cannot be generic"));
        } else if let Some(w) = &sig.generics.where_clause {
            errs.push(syn::Error::new_spanned(w, "remote methods cannot have `where` clauses"));
        }
        if let Some(body) = &f.default {
            errs.push(syn::Error::new_spanned(
                body,
                "remote methods cannot have a default body; implement the method on each servant",
            ));
        }
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")) {
            errs.push(syn::Error::new_spanned(
                attr,
                "remote methods cannot be conditional: the operations of an interface are part of its \
                 wire contract; use another trait or interface version instead",
            ));
        }
        if sig.ident.to_string().starts_with("__") {
            errs.push(syn::Error::new_spanned(
                &sig.ident,
                "names starting with `__` are reserved for code generated by `#[remote]`",
            ));
        }

        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r))
                if matches!(r.kind, ReceiverKind::Reference(_, _, None)) && r.mutability.is_none() => {}
            Some(FnArg::Receiver(r)) => {
                errs.push(syn::Error::new_spanned(r, "remote methods must take `&self`"));
            }
            _ => errs.push(syn::Error::new_spanned(
                &sig.ident,
                "remote methods must take `&self` as their first argument",
            )),
        }
        let mut args = Vec::new();
        for input in inputs {
            match input {
                FnArg::Typed(pt) => match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        if let Type::ImplTrait(_) = &*pt.ty {
                            errs.push(syn::Error::new_spanned(
                                &pt.ty,
                                "arguments of remote methods must have concrete types, not `impl Trait`",
                            ));
                        }
                        args.push(Arg { ident: &pi.ident, ty: &pt.ty, bytes: is_byte_vec(&pt.ty) });
                    }
                    other => errs.push(syn::Error::new_spanned(
                        other,
                        "arguments of remote methods must be plain names, like `value: T`",
                    )),
                },
                FnArg::Receiver(r) => errs.push(syn::Error::new_spanned(r, "unexpected `self` argument")),
            }
        }

        let output = match &sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => {
                if let Type::ImplTrait(_) = &**ty {
                    errs.push(syn::Error::new_spanned(
                        ty,
                        "remote methods must return a concrete type, not `impl Trait`",
                    ));
                }
                result_parts(ty).map_or(Output::Value(ty), |(ok, err)| Output::Result { whole: ty, ok, err })
            }
        };

        let mut op_errors = Errors::default();
        let op_args = OpArgs::parse(&f.attrs, &mut op_errors);
        let (op, op_span, op_pinned) = match op_args.id {
            Some((id, span)) => (id, span, true),
            None => (rmi_core::OpId::from_name(&unraw(&sig.ident)).0, sig.ident.span(), false),
        };

        if let Some((SemanticsAttr::Oneway, _)) = &op_args.semantics {
            match &sig.output {
                ReturnType::Default => {}
                ReturnType::Type(_, ty) if matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) => {}
                ReturnType::Type(_, ty) => errs.push(syn::Error::new_spanned(
                    ty,
                    "`#[oneway]` methods return nothing: the caller gets no reply; remove the return type",
                )),
            }
        }
        for e in errs {
            op_errors.add(e);
        }
        if let Err(e) = op_errors.finish() {
            errors.add(e);
            return None;
        }
        Some(Method {
            original: f,
            ident: &sig.ident,
            variant: Ident::new(&camel_case(&unraw(&sig.ident)), sig.ident.span()),
            args,
            output,
            op,
            op_span,
            op_pinned,
            semantics: op_args.semantics.map(|(s, _)| s),
            timeout: op_args.timeout,
        })
    }

    /// The user's attributes that the generated client method carries: docs, lint levels and
    /// deprecation.
    pub(crate) fn forwarded_attrs(&self) -> impl Iterator<Item = &'a Attribute> {
        const FORWARDED: [&str; 7] = ["doc", "allow", "warn", "deny", "expect", "forbid", "deprecated"];
        self.original.attrs.iter().filter(|a| FORWARDED.iter().any(|name| a.path().is_ident(name)))
    }

    /// The method's name as written, without `r#`.
    pub(crate) fn name(&self) -> String {
        unraw(self.ident)
    }

    /// Span for errors about this method.
    pub(crate) fn span(&self) -> Span {
        self.original.sig.ident.span()
    }

    /// Whether the method's value (the `T` of `-> T` or of `-> Result<T, E>`) is written `Vec<u8>`,
    /// so that it travels as a byte string ([`is_byte_vec`]).
    pub(crate) fn returns_bytes(&self) -> bool {
        match self.output {
            Output::Unit => false,
            Output::Value(ty) | Output::Result { ok: ty, .. } => is_byte_vec(ty),
        }
    }
}

/// Whether `ty` is written `Vec<u8>` (or `std::vec::Vec<u8>`, `alloc::vec::Vec<u8>`, with or without
/// a leading `::`). Such values are sent as postcard byte strings, the same bytes on the wire as the
/// sequence of `u8` serde makes of a `Vec<u8>`, in one copy instead of one call per byte. The test is
/// on the tokens: an alias, or a `Vec<u8>` inside another type, is sent as serde sends it.
pub(crate) fn is_byte_vec(ty: &Type) -> bool {
    let ty = match ty {
        // A type passed through a `macro_rules!` fragment.
        Type::Group(group) => &*group.elem,
        ty => ty,
    };
    let Type::Path(TypePath { qself: None, path, .. }) = ty else { return false };
    let segments: Vec<_> = path.segments.iter().collect();
    let Some((vec, prefix)) = segments.split_last() else { return false };
    let prefix_is_std = match prefix {
        [] => path.leading_colon.is_none(),
        [krate, module] => {
            (krate.ident == "std" || krate.ident == "alloc")
                && module.ident == "vec"
                && krate.arguments.is_none()
                && module.arguments.is_none()
        }
        _ => false,
    };
    let PathArguments::AngleBracketed(args) = &vec.arguments else { return false };
    let elem_is_u8 = matches!(
        args.args.iter().collect::<Vec<_>>()[..],
        [GenericArgument::Type(Type::Path(elem))] if elem.qself.is_none() && elem.path.is_ident("u8")
    );
    prefix_is_std && vec.ident == "Vec" && elem_is_u8
}

/// `Ok` and `Err` types of a return type written `Result<T, E>` (any path ending in `Result`).
fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(ok), Some(err), None) if args.args.len() == 2 => Some((ok, err)),
        _ => None,
    }
}

fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

/// `get_value` -> `GetValue`.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    // `self_` and `_self` would give `Self`, a keyword.
    if out == "Self" { "Self_".to_owned() } else { out }
}
