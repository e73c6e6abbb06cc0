// Rebuild when a migration is added or changed: `embed_migrations!` reads migrations/ at compile
// time, and cargo does not see a new directory there by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
