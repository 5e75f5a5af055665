//! Multi-axis positions (docs/CONTRACT.md §3): each token has `A` positions and each frequency takes
//! one axis. The kernel knows one table row per token, so a multi-axis call gets a table
//! with one row per token, built here on the host.

use crate::error::{Error, Result};

/// Which position axis each frequency takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Axes {
    /// One position per token (every text model).
    #[default]
    Single,
    /// `axial:n0,n1,..`: section k (n_k pairs) has its own frequencies
    /// `1/base^(2j/(2·n_k))` and takes axis k (the seed's TTT video DiT, CogVideoX, Flux).
    Axial(Vec<usize>),
    /// `mrope:t,h,w` (Qwen2-VL): the frequencies of the variant over all `R/2`, section k of
    /// consecutive frequencies takes axis k.
    Mrope(Vec<usize>),
    /// `mrope-interleaved:t,h,w` (Qwen3-VL): frequency i takes axis 1 when `i % 3 == 1` and
    /// `i < 3·h`, axis 2 when `i % 3 == 2` and `i < 3·w`, else axis 0.
    MropeInterleaved(Vec<usize>),
}

impl Axes {
    /// Number of position axes per token.
    pub fn count(&self) -> usize {
        match self {
            Axes::Single => 1,
            Axes::Axial(s) | Axes::Mrope(s) | Axes::MropeInterleaved(s) => s.len(),
        }
    }

    /// The CLI's spelling: `axial:8,12,12`, ... (`single` for one axis).
    pub fn name(&self) -> String {
        let join = |s: &[usize]| {
            s.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Axes::Single => "single".into(),
            Axes::Axial(s) => format!("axial:{}", join(s)),
            Axes::Mrope(s) => format!("mrope:{}", join(s)),
            Axes::MropeInterleaved(s) => format!("mrope-interleaved:{}", join(s)),
        }
    }

    /// The axis of each of the `pairs` frequencies; errors name sections that do not fit.
    pub fn axis_map(&self, pairs: usize) -> Result<Vec<usize>> {
        let sections = match self {
            Axes::Single => return Ok(vec![0; pairs]),
            Axes::Axial(s) | Axes::Mrope(s) | Axes::MropeInterleaved(s) => s,
        };
        if sections.is_empty() || sections.contains(&0) {
            return Err(Error::Parameter(format!(
                "axes {} need at least one section and no empty section",
                self.name()
            )));
        }
        let sum: usize = sections.iter().sum();
        if sum != pairs {
            return Err(Error::Parameter(format!(
                "axes {} cover {sum} frequency pairs but rotary dimension {} has {pairs}",
                self.name(),
                2 * pairs
            )));
        }
        Ok(match self {
            Axes::MropeInterleaved(s) => {
                if s.len() != 3 {
                    return Err(Error::Parameter(format!(
                        "axes {} need exactly three sections (t, h, w)",
                        self.name()
                    )));
                }
                (0..pairs)
                    .map(|i| {
                        if i % 3 == 1 && i < 3 * s[1] {
                            1
                        } else if i % 3 == 2 && i < 3 * s[2] {
                            2
                        } else {
                            0
                        }
                    })
                    .collect()
            }
            _ => sections
                .iter()
                .enumerate()
                .flat_map(|(k, &n)| std::iter::repeat_n(k, n))
                .collect(),
        })
    }
}

impl std::str::FromStr for Axes {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Parameter(format!(
                "axes {s:?} are not KIND:n0,n1,.. with KIND axial, mrope or mrope-interleaved"
            ))
        };
        let (kind, list) = s.split_once(':').ok_or_else(bad)?;
        let sections = list
            .split(',')
            .map(|n| n.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        if sections.is_empty() || sections.contains(&0) {
            return Err(bad());
        }
        match kind {
            "axial" => Ok(Axes::Axial(sections)),
            "mrope" => Ok(Axes::Mrope(sections)),
            "mrope-interleaved" => Ok(Axes::MropeInterleaved(sections)),
            _ => Err(bad()),
        }
    }
}

/// Positions of a `frames × height × width` grid of tokens in `(t, h, w)` order, axis-major
/// (`[3, frames·height·width]`: all t, then all h, then all w), each axis starting at
/// `start` (e.g. Qwen2-VL puts an image after the text before it).
pub fn grid_positions(frames: usize, height: usize, width: usize, start: u64) -> Vec<u64> {
    let n = frames * height * width;
    let mut out = Vec::with_capacity(3 * n);
    for axis in 0..3 {
        for t in 0..frames {
            for h in 0..height {
                for w in 0..width {
                    out.push(start + [t, h, w][axis] as u64);
                }
            }
        }
    }
    out
}
