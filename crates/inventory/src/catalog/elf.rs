//! Just enough ELF to find a section by name; every offset is bounds-checked.

/// A parsed ELF file's section table.
pub(crate) struct Elf<'a> {
    bytes: &'a [u8],
    little_endian: bool,
    /// (name offset, type, file offset, size) per section.
    sections: Vec<(u32, u32, u64, u64)>,
    names: &'a [u8],
}

/// Section type of sections that occupy no file space.
const SHT_NOBITS: u32 = 8;

impl<'a> Elf<'a> {
    /// Parses the header and section table; `None` for anything malformed.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Elf<'a>> {
        if bytes.get(..4)? != b"\x7fELF" {
            return None;
        }
        let is_64 = match bytes.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match bytes.get(5)? {
            1 => true,
            2 => false,
            _ => return None,
        };
        let mut elf = Elf {
            bytes,
            little_endian,
            sections: Vec::new(),
            names: &[],
        };
        let (shoff, shentsize, shnum, shstrndx) = if is_64 {
            (
                elf.u64_at(0x28)?,
                elf.u16_at(0x3a)?,
                elf.u16_at(0x3c)?,
                elf.u16_at(0x3e)?,
            )
        } else {
            (
                u64::from(elf.u32_at(0x20)?),
                elf.u16_at(0x2e)?,
                elf.u16_at(0x30)?,
                elf.u16_at(0x32)?,
            )
        };
        for index in 0..u64::from(shnum) {
            let base = shoff.checked_add(index.checked_mul(u64::from(shentsize))?)?;
            let base = usize::try_from(base).ok()?;
            let section = if is_64 {
                (
                    elf.u32_at(base)?,
                    elf.u32_at(base + 4)?,
                    elf.u64_at(base + 0x18)?,
                    elf.u64_at(base + 0x20)?,
                )
            } else {
                (
                    elf.u32_at(base)?,
                    elf.u32_at(base + 4)?,
                    u64::from(elf.u32_at(base + 0x10)?),
                    u64::from(elf.u32_at(base + 0x14)?),
                )
            };
            elf.sections.push(section);
        }
        let (_, _, names_offset, names_size) = *elf.sections.get(usize::from(shstrndx))?;
        elf.names = elf.slice(names_offset, names_size)?;
        Some(elf)
    }

    /// The contents of the section called `name`, if present and stored in the file.
    pub(crate) fn section(&self, name: &str) -> Option<&'a [u8]> {
        self.sections
            .iter()
            .find(|(name_offset, kind, _, _)| {
                *kind != SHT_NOBITS && self.name_at(*name_offset) == Some(name.as_bytes())
            })
            .and_then(|(_, _, offset, size)| self.slice(*offset, *size))
    }

    fn name_at(&self, offset: u32) -> Option<&'a [u8]> {
        let rest = self.names.get(usize::try_from(offset).ok()?..)?;
        let end = memchr::memchr(0, rest)?;
        Some(&rest[..end])
    }

    fn slice(&self, offset: u64, size: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        self.bytes.get(start..end)
    }

    fn u16_at(&self, offset: usize) -> Option<u16> {
        let bytes: [u8; 2] = self.bytes.get(offset..offset + 2)?.try_into().ok()?;
        Some(if self.little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        })
    }

    fn u32_at(&self, offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = self.bytes.get(offset..offset + 4)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    fn u64_at(&self, offset: usize) -> Option<u64> {
        let bytes: [u8; 8] = self.bytes.get(offset..offset + 8)?.try_into().ok()?;
        Some(if self.little_endian {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        })
    }
}
