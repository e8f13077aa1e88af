//! Finding `.BTF` in an ELF file with the `object` crate's zero-copy reader.

use object::Endianness;
use object::elf::{ELFCLASS32, ELFCLASS64, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, SectionHeader};

use crate::error::{Error, ErrorKind, Result};

/// Whether `data` starts with the ELF magic.
pub(crate) fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// The contents of section `name` of an ELF file, 32- or 64-bit, either
/// byte order.
pub(crate) fn section_data<'a>(data: &'a [u8], name: &'static str) -> Result<&'a [u8]> {
    match data.get(4) {
        _ if !is_elf(data) => Err(Error::new(ErrorKind::NotElf, 0)),
        Some(&ELFCLASS64) => find::<FileHeader64<Endianness>>(data, name),
        Some(&ELFCLASS32) => find::<FileHeader32<Endianness>>(data, name),
        _ => Err(Error::new(ErrorKind::Elf("unknown ELF class"), 4)),
    }
}

fn find<'a, H: FileHeader<Endian = Endianness>>(
    data: &'a [u8],
    name: &'static str,
) -> Result<&'a [u8]> {
    let elf_err = |m: &'static str| Error::new(ErrorKind::Elf(m), 0);
    let hdr = H::parse(data).map_err(|_| elf_err("invalid ELF header"))?;
    let endian = hdr
        .endian()
        .map_err(|_| elf_err("invalid ELF byte order"))?;
    let sections = hdr
        .sections(endian, data)
        .map_err(|_| elf_err("invalid section headers or names"))?;
    let (_, sec) = sections
        .section_by_name(endian, name.as_bytes())
        .ok_or(Error::new(ErrorKind::MissingSection(name), 0))?;
    let at = sec.sh_offset(endian).into() as usize;
    sec.data(endian, data)
        .map_err(|_| Error::new(ErrorKind::Elf("section data outside the file"), at))
}
