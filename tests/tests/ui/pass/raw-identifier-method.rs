//! A method named with a raw identifier keeps its plain name on the wire and in the op enum.

use rmi_runtime::remote;

#[remote]
trait Token {
    async fn r#type(&self) -> String;
    async fn r#match(&self, pattern: String) -> bool;
}

/// Type-checks the calls; never run.
#[allow(dead_code)]
async fn call(c: &TokenClient) -> Result<bool, rmi_runtime::Error> {
    let _: String = c.r#type().await?;
    c.r#match(String::from("*")).await
}

fn main() {
    assert_eq!(TokenOp::Type.name(), "type");
    assert_eq!(TokenOp::Match.name(), "match");
    assert_eq!(TokenOp::Type.id(), rmi_runtime::OpId::from_name("type"));
    assert_eq!(TokenOp::DESCRIPTOR.methods[1].name, "match");
}
