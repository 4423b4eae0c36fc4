//! Contest problems as the Art of Problem Solving wiki names them, the one naming every AIME
//! and AMC set shares: `2024_AIME_I_Problems/Problem_1` in a `url`, or ids written from it
//! (`2022-II-8`, `2025_AIME_II_5`, `1983-1`). Reading them gives the same problem the same id
//! in every set that carries it, and a year to date it by where the set has no year column.

/// One contest problem: `2024 AIME I #1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContestProblem {
    /// The year of the contest.
    pub(crate) year: i32,
    /// The contest as the wiki writes it (`AIME`, `AMC`, `AHSME`, `AJHSME`).
    pub(crate) contest: String,
    /// Which paper: `I`/`II` for the AIME since 2000, `12A`, `10B`, `8` for the AMC.
    pub(crate) part: Option<String>,
    /// The problem's number in its paper.
    pub(crate) number: u32,
}

impl ContestProblem {
    /// The id tail `2024-I-1` (or `1983-1` for a one-paper year), as the AIME sets write ids.
    pub(crate) fn aime_tail(&self) -> String {
        match &self.part {
            Some(part) => format!("{}-{part}-{}", self.year, self.number),
            None => format!("{}-{}", self.year, self.number),
        }
    }

    /// The id tail `amc12a-2023-10`: contest and paper, year, number.
    pub(crate) fn tail(&self) -> String {
        let paper = format!(
            "{}{}",
            self.contest,
            self.part.as_deref().unwrap_or_default()
        );
        format!(
            "{}-{}-{}",
            paper.to_ascii_lowercase(),
            self.year,
            self.number
        )
    }
}

fn year(token: &str) -> Option<i32> {
    (token.len() == 4 && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())
        .flatten()
        .filter(|y| (1950..=2100).contains(y))
}

fn number(token: &str) -> Option<u32> {
    (!token.is_empty() && token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())
        .flatten()
}

/// The problem an AoPS wiki URL points to: `…/2024_AIME_I_Problems/Problem_1`,
/// `…/2023_AMC_12A_Problems/Problem_10`, `…/1983_AIME_Problems/Problem_1`.
pub(crate) fn from_url(url: &str) -> Option<ContestProblem> {
    let url = url.trim().trim_end_matches('/');
    let (set, problem) = url.rsplit_once("/Problem_")?;
    let number = number(problem.split(['#', '?']).next()?)?;
    let set = set.rsplit('/').next()?.strip_suffix("_Problems")?;
    let mut tokens = set.split('_');
    let year = year(tokens.next()?)?;
    let contest = tokens.next()?;
    if contest.is_empty() || !contest.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let part = tokens.next().map(str::to_string);
    if tokens.next().is_some() {
        return None;
    }
    Some(ContestProblem {
        year,
        contest: contest.to_string(),
        part,
        number,
    })
}

/// An AIME problem named by an id: `2022-II-8`, `1983-1`, `2025_AIME_II_5`, `1983_AIME_1`,
/// `2024-I-1`.
pub(crate) fn aime_from_id(id: &str) -> Option<ContestProblem> {
    let tokens: Vec<&str> = id
        .trim()
        .split(['-', '_', ' '])
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aime"))
        .collect();
    let (year, part, n) = match tokens.as_slice() {
        [y, n] => (year(y)?, None, number(n)?),
        [y, p, n] if matches!(*p, "I" | "II") => (year(y)?, Some(p.to_string()), number(n)?),
        _ => return None,
    };
    Some(ContestProblem {
        year,
        contest: "AIME".into(),
        part,
        number: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_urls_name_contest_paper_and_number() {
        let p = from_url(
            "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_12",
        )
        .unwrap();
        assert_eq!(p.aime_tail(), "2024-I-12");
        let p = from_url(
            "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_1",
        )
        .unwrap();
        assert_eq!(
            (p.contest.as_str(), p.tail()),
            ("AMC", "amc12a-2023-1".into())
        );
        let p =
            from_url("https://artofproblemsolving.com/wiki/index.php/1983_AIME_Problems/Problem_4")
                .unwrap();
        assert_eq!(p.aime_tail(), "1983-4");
        assert_eq!(from_url("https://example.com/Problem_1"), None);
        assert_eq!(
            from_url("https://artofproblemsolving.com/wiki/index.php/AIME"),
            None
        );
    }

    #[test]
    fn every_aime_id_form_gives_the_same_problem() {
        for id in ["2022-II-8", "2022_AIME_II_8", "2022 II 8"] {
            assert_eq!(aime_from_id(id).unwrap().aime_tail(), "2022-II-8", "{id}");
        }
        for id in ["1983-1", "1983_AIME_1"] {
            assert_eq!(aime_from_id(id).unwrap().aime_tail(), "1983-1", "{id}");
        }
        assert_eq!(aime_from_id("60"), None);
        assert_eq!(aime_from_id("2024-III-1"), None);
    }
}
