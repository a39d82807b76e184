//! The simulated conversation: a day of chatter about a fictional notes app's 2.0 launch
//! ("Kestrel"), in English and German, on Mastodon, Bluesky, Hacker News and the vendor's
//! blog — mostly curious or happy, then a wave of complaints about lost notes after a
//! sync bug, with one widely followed author joining in. Deterministic: the same script
//! every run.

use jiff::{SignedDuration, Timestamp};

/// Where a simulated item appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    Mastodon,
    Bluesky,
    HackerNews,
    Blog,
}

/// One simulated post, comment or article.
#[derive(Debug, Clone)]
pub struct Item {
    pub at: Timestamp,
    pub venue: Venue,
    pub author: String,
    pub followers: u64,
    pub lang: &'static str,
    pub text: String,
}

const EN_GOOD: &[&str] = &[
    "Kestrel 2.0 is great, the new editor feels fast and clean",
    "Loving the offline mode in Kestrel, finally notes on the train",
    "Switched from my old app to Kestrel today, the import was painless",
    "Kestrel 2.0 templates are a real time saver, nice work",
    "The encrypted sync in Kestrel is a big deal for our team, thank you",
    "Beautiful release. Kestrel keeps getting better",
    "Kestrel's new search is excellent, found a note from 2019 in a second",
];
const EN_NEUTRAL: &[&str] = &[
    "Trying Kestrel 2.0 this week, will report back",
    "Does Kestrel support markdown tables now?",
    "Kestrel 2.0 release notes are out, reading them now",
    "Anyone compared Kestrel with other notes apps on Linux?",
    "Kestrel pricing page says the family plan covers five people",
];
const EN_BAD_BACKGROUND: &[&str] = &[
    "Kestrel 2.0 dark mode is a bit too dark for me",
    "Not sure about the new Kestrel toolbar, it moved everything",
];
const DE_GOOD: &[&str] = &[
    "Kestrel 2.0 ist richtig gut, der neue Editor ist schnell und schön",
    "Endlich Notizen offline mit Kestrel, super gemacht",
    "Die Vorlagen in Kestrel sparen mir jeden Tag Zeit, danke",
    "Kestrel gefällt mir sehr, die Suche ist hervorragend",
];
const DE_NEUTRAL: &[&str] = &[
    "Hat jemand Kestrel 2.0 schon mit mehreren Geräten getestet?",
    "Kestrel 2.0 ist heute erschienen, ich schaue es mir am Wochenende an",
];
const EN_WAVE: &[&str] = &[
    "Kestrel sync just deleted half my notes. This is terrible",
    "After the Kestrel 2.0 update my notes are gone. Lost a week of work, furious",
    "Kestrel sync is broken, notes disappear on my phone. Awful",
    "Do NOT update Kestrel today, the sync bug wipes notes. Horrible",
    "Kestrel support is not answering and my notes are lost. Really bad",
    "Kestrel 2.0 lost my meeting notes during sync, what a disaster",
    "The Kestrel sync bug destroyed my notes, angry and disappointed",
    "Kestrel, your sync lost my data. Worst update ever",
    "Kestrel sync conflict ate my notes again, this is unacceptable",
];
const DE_WAVE: &[&str] = &[
    "Kestrel hat nach dem Update meine Notizen gelöscht, furchtbar",
    "Die Synchronisierung von Kestrel ist kaputt, alle Notizen weg. Schlecht",
    "Kestrel 2.0 Sync Fehler, Daten verloren, sehr ärgerlich",
    "Schrecklich: Kestrel hat meine Notizen bei der Synchronisierung zerstört",
];
const INFLUENCER: &str = "I've recommended Kestrel for years, but 2.0's sync bug just wiped notes for several people I know. Hold off on updating until they fix it";

const MASTODON_PEOPLE: &[(&str, u64)] = &[
    ("mira@social.example", 840),
    ("jonas@chaos.example", 2_300),
    ("ada@fosstodon.example", 12_400),
    ("lena@mastodon.example", 610),
    ("sam@hachyderm.example", 4_100),
    ("felix@norden.example", 390),
];
const BLUESKY_PEOPLE: &[&str] = &[
    "noor.bsky.social",
    "tobi.bsky.social",
    "kai.example.com",
    "rosa.bsky.social",
    "priya.bsky.social",
];
const HN_PEOPLE: &[&str] = &[
    "tptacek_fan",
    "notesnerd",
    "dang_it",
    "throwaway42",
    "pg_reader",
];

/// A small deterministic generator (SplitMix64): the same script on every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The day of conversation starting at `start`, lasting `hours`; the wave begins two hours
/// before the end. Sorted by time.
pub fn conversation(start: Timestamp, hours: i64) -> Vec<Item> {
    let mut dice = Dice(0x4B45_5354_5245_4C32);
    let mut items = Vec::new();
    let wave_start = start + SignedDuration::from_hours(hours - 2);
    let hour = SignedDuration::from_hours(1);
    for h in 0..hours - 2 {
        let base = start + hour * i32::try_from(h).unwrap_or(0);
        // A busier launch morning, quieter nights.
        let per_hour = match h {
            1..=4 => 7 + dice.below(3),
            h if (8..=20).contains(&(h % 24)) => 3 + dice.below(3),
            _ => 1 + dice.below(2),
        };
        for _ in 0..per_hour {
            let at = base + SignedDuration::from_secs(i64::try_from(dice.below(3600)).unwrap_or(0));
            let german = dice.below(100) < 30;
            let mood = dice.below(100);
            let text = match (german, mood) {
                (false, 0..=59) => *dice.pick(EN_GOOD),
                (false, 60..=92) => *dice.pick(EN_NEUTRAL),
                (false, _) => *dice.pick(EN_BAD_BACKGROUND),
                (true, 0..=64) => *dice.pick(DE_GOOD),
                (true, _) => *dice.pick(DE_NEUTRAL),
            };
            items.push(voice(&mut dice, at, if german { "de" } else { "en" }, text));
        }
    }
    // The wave: complaints about lost notes, in both languages, on every platform.
    for i in 0..44 {
        let at = wave_start
            + SignedDuration::from_secs(
                600 + i64::from(i) * 100 + i64::try_from(dice.below(90)).unwrap_or(0),
            );
        let german = i % 4 == 3;
        let text = if german {
            *dice.pick(DE_WAVE)
        } else if i % 7 == 5 {
            *dice.pick(EN_NEUTRAL)
        } else {
            *dice.pick(EN_WAVE)
        };
        items.push(voice(&mut dice, at, if german { "de" } else { "en" }, text));
    }
    items.push(Item {
        at: wave_start + SignedDuration::from_mins(35),
        venue: Venue::Mastodon,
        author: "grace@tech.example".to_owned(),
        followers: 250_000,
        lang: "en",
        text: INFLUENCER.to_owned(),
    });
    for (offset_hours, title) in [
        (
            1,
            "Kestrel 2.0: offline-first notes and end-to-end encrypted sync",
        ),
        (9, "Kestrel 2.0 review: the notes app grows up"),
        (
            hours - 1,
            "Kestrel investigates reports of notes lost during sync",
        ),
    ] {
        items.push(Item {
            at: start + SignedDuration::from_hours(offset_hours) + SignedDuration::from_mins(5),
            venue: Venue::Blog,
            author: "Kestrel blog".to_owned(),
            followers: 0,
            lang: "en",
            text: title.to_owned(),
        });
    }
    items.sort_by_key(|i| i.at);
    items
}

fn voice(dice: &mut Dice, at: Timestamp, lang: &'static str, text: &str) -> Item {
    let (venue, author, followers) = match dice.below(10) {
        0..=4 => {
            let (who, followers) = *dice.pick(MASTODON_PEOPLE);
            (Venue::Mastodon, who.to_owned(), followers)
        }
        5..=7 => (Venue::Bluesky, (*dice.pick(BLUESKY_PEOPLE)).to_owned(), 0),
        _ => (Venue::HackerNews, (*dice.pick(HN_PEOPLE)).to_owned(), 0),
    };
    Item {
        at,
        venue,
        author,
        followers,
        lang,
        text: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_day_then_the_script_is_deterministic_bilingual_and_ends_in_a_wave() {
        let start: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let a = conversation(start, 24);
        let b = conversation(start, 24);
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.text == y.text && x.at == y.at)
        );
        assert!(a.iter().any(|i| i.lang == "de"));
        assert!(a.iter().all(|i| i.text.to_lowercase().contains("kestrel")));
        let wave_start = start + SignedDuration::from_hours(22);
        let in_wave = a.iter().filter(|i| i.at >= wave_start).count();
        let before = a.iter().filter(|i| i.at < wave_start).count();
        assert!(in_wave >= 45 && before > 60, "{in_wave} / {before}");
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.iter().any(|i| i.followers >= 100_000));
        for venue in [
            Venue::Mastodon,
            Venue::Bluesky,
            Venue::HackerNews,
            Venue::Blog,
        ] {
            assert!(a.iter().any(|i| i.venue == venue), "{venue:?}");
        }
    }
}
