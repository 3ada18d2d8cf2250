//! Build script: the linker arguments of a Python extension module on macOS (`-undefined
//! dynamic_lookup`: symbols of libpython resolve when the interpreter loads the module); nothing
//! on Linux.

fn main() {
    pyo3_build_config::add_extension_module_link_args();
}
