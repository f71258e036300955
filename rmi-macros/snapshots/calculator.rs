/// A calculator that lives in another process.
#[remote(version = 2)]
pub trait Calculator {
    /// Adds two numbers.
    #[idempotent]
    async fn add(&self, a: i32, b: i32) -> i32;

    /// Divides, failing on a zero divisor.
    #[op(timeout = "250ms")]
    async fn div(&self, a: i32, b: i32) -> Result<i32, MathError>;

    #[oneway]
    async fn reset(&self);

    #[op(id = 7)]
    async fn history(&self) -> Vec<String>;

    /// Multiplies each byte; `Vec<u8>` travels as a byte string.
    async fn scale(&self, bytes: Vec<u8>, factor: u8) -> Vec<u8>;

    /// Reads a memory register; only the top-level `Vec<u8>` travels as a byte string.
    async fn recall(&self, key: Option<Vec<u8>>) -> Result<::std::vec::Vec<u8>, MathError>;
}
