// libbndrop.so's own target. The C exports live in BNDropC; this target holds no code, only the link
// flags of the shared library (Package.swift): soname, exported symbols, the Swift runtime linked in
// statically. Flags of a target apply to every product that contains it, and the test executables
// contain BNDropC, so the flags sit here, in the one target only libbndrop.so contains.
