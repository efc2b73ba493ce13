hooks::operation! {
    /// A name with a space in it.
    pub Ship: "orders ship", u32 => u32
}

hooks::operation! {
    /// An asset with no name.
    pub Pack: "orders.pack" on "", u32 => u32
}

fn main() {}
