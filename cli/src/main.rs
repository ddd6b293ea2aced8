fn main() {
    println!("nst-cli: style transfer lands with the transfer issue");
}
