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
}
