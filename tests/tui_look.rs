use shortbox::client::testing::demo;
#[test]
fn look() {
    let h = demo((120, 40), true);
    println!("{}", h.render());
    let h = demo((80, 24), false);
    println!("{}", h.render());
}
