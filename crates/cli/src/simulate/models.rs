//! The printer models the simulator knows: what each can do, which supplies it takes and how
//! busy it typically is.

use printfleet_protocol::messages::{Capabilities, SupplyKind};

/// Which impressions wear a supply down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// Every impression (black toner, drum).
    Every,
    /// Colour impressions only (cyan, magenta, yellow toner).
    Colour,
}

#[derive(Debug)]
pub struct SupplySpec {
    /// The slot's name, stable across replacements.
    pub id: &'static str,
    pub kind: SupplyKind,
    pub colour: Option<&'static str>,
    pub part_number: &'static str,
    pub capacity_pages: u64,
    pub usage: Usage,
}

#[derive(Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    /// The catalogue's model family (`catalogue::MODEL_FAMILIES`).
    pub family: &'static str,
    pub capabilities: Capabilities,
    pub supplies: &'static [SupplySpec],
    /// Mean pages printed between two reports.
    pub pages_per_step: u64,
}

const fn caps(colour: bool, duplex: bool, scan: bool, fax: bool) -> Capabilities {
    Capabilities {
        colour,
        duplex,
        scan,
        fax,
    }
}

const fn supply(
    id: &'static str,
    kind: SupplyKind,
    colour: Option<&'static str>,
    part_number: &'static str,
    capacity_pages: u64,
    usage: Usage,
) -> SupplySpec {
    SupplySpec {
        id,
        kind,
        colour,
        part_number,
        capacity_pages,
        usage,
    }
}

const fn black(part: &'static str, pages: u64) -> SupplySpec {
    supply(
        "toner-black",
        SupplyKind::Toner,
        Some("black"),
        part,
        pages,
        Usage::Every,
    )
}

const fn drum(part: &'static str, pages: u64) -> SupplySpec {
    supply("drum", SupplyKind::Drum, None, part, pages, Usage::Every)
}

const fn colour(
    id: &'static str,
    name: &'static str,
    part: &'static str,
    pages: u64,
) -> SupplySpec {
    supply(
        id,
        SupplyKind::Toner,
        Some(name),
        part,
        pages,
        Usage::Colour,
    )
}

/// The simulated fleet's models; printer `i` is model `i % MODELS.len()`.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "LaserJet Enterprise M507",
        family: "office-mono",
        capabilities: caps(false, true, false, false),
        supplies: &[black("CF289A", 5_000), drum("CF232A", 23_000)],
        pages_per_step: 60,
    },
    ModelSpec {
        name: "Color LaserJet Enterprise M554",
        family: "office-color",
        capabilities: caps(true, true, false, false),
        supplies: &[
            black("W2020A", 5_500),
            colour("toner-cyan", "cyan", "W2021A", 4_500),
            colour("toner-magenta", "magenta", "W2023A", 4_500),
            colour("toner-yellow", "yellow", "W2022A", 4_500),
            drum("CF219A", 12_000),
        ],
        pages_per_step: 50,
    },
    ModelSpec {
        name: "LaserJet Enterprise MFP M528",
        family: "mfp-mono",
        capabilities: caps(false, true, true, true),
        supplies: &[black("CF237A", 11_000), drum("CF232A", 23_000)],
        pages_per_step: 80,
    },
    ModelSpec {
        name: "Color LaserJet Enterprise MFP M578",
        family: "mfp-color",
        capabilities: caps(true, true, true, true),
        supplies: &[
            black("W2030A", 2_400),
            colour("toner-cyan", "cyan", "W2031A", 2_100),
            colour("toner-magenta", "magenta", "W2033A", 2_100),
            colour("toner-yellow", "yellow", "W2032A", 2_100),
            drum("CF219A", 12_000),
        ],
        pages_per_step: 70,
    },
    ModelSpec {
        name: "LaserJet Pro M110w",
        family: "office-mono",
        capabilities: caps(false, false, false, false),
        supplies: &[black("W1500A", 975), drum("W1104A", 20_000)],
        pages_per_step: 15,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_domain::catalogue::MODEL_FAMILIES;

    #[test]
    fn models_are_distinct_and_name_known_families() {
        for (i, m) in MODELS.iter().enumerate() {
            assert!(MODEL_FAMILIES.contains(&m.family), "{}", m.name);
            assert!(MODELS[..i].iter().all(|o| o.name != m.name));
            assert!(m.supplies.iter().all(|s| s.capacity_pages > 0));
            let colour_toners = m.supplies.iter().filter(|s| s.usage == Usage::Colour);
            assert_eq!(
                colour_toners.count() > 0,
                m.capabilities.colour,
                "{}",
                m.name
            );
            assert_eq!(m.capabilities.scan, m.capabilities.fax, "MFPs scan and fax");
        }
        assert!(MODELS.iter().any(|m| !m.capabilities.duplex));
    }
}
