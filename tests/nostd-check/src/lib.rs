//! Proof that ember-core builds without std: this crate defines its own
//! panic handler, which collides (E0152) with std's if anything links std.
#![no_std]

use ember_core as _;
use ember_sys as _;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
