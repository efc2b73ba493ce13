hooks::operation! {
    pub Ship: "orders.ship", u32 => u32
}

fn main() {}
