//! The seeds' platforms as demo data: KALE-ndar farmers (Stellar accounts planting,
//! working and harvesting with a proof each) and Fathuss coders (a challenge catalogue
//! with test-case artifacts, and graded submissions). Generated as drafts, the same
//! inputs `recordEvents`, `recordArtifacts` and `upsertChallenges` take, so that the seed
//! writes them through the same checks and the same outbox as the API.

use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use serde_json::json;
use sha2::Digest;

use super::{
    dataset::{at, User},
    rng::Rng,
    Shape,
};
use crate::{
    domain::{
        artifacts::{ArtifactDraft, ArtifactKind},
        challenges::Difficulty,
        events::EventDraft,
    },
    store::mongo::{Link, ProfileDoc},
    values::ChainFamily,
};

/// A challenge of the catalogue, before its check.
pub struct ChallengeDraft {
    pub id: String,
    pub title: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub test_cases: Vec<String>,
}

/// What one platform adds to the demo data, in the order it is written: users (with
/// profiles), artifacts that stand alone, challenges, events, then artifacts that back
/// events.
#[derive(Default)]
pub struct PlatformData {
    pub users: Vec<User>,
    pub profiles: Vec<ProfileDoc>,
    pub artifacts: Vec<ArtifactDraft>,
    pub challenges: Vec<ChallengeDraft>,
    pub events: Vec<EventDraft>,
    pub event_artifacts: Vec<ArtifactDraft>,
}

/// An ed25519 public key from `rng`'s next 32 bytes (a wallet of the demo data).
fn ed25519_public(rng: &mut Rng) -> [u8; 32] {
    let mut secret = [0u8; 32];
    for chunk in secret.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes()
}

/// What a platform's user shows in their profile.
struct Persona {
    display_name: String,
    bio: String,
    link: Link,
    preferences: mongodb::bson::Document,
}

impl PlatformData {
    /// Adds a user of a platform, with their profile.
    fn join(
        &mut self,
        id: uuid::Uuid,
        chain: ChainFamily,
        address: &str,
        username: String,
        created_at: DateTime<Utc>,
        persona: Persona,
    ) {
        self.profiles.push(ProfileDoc {
            user_id: id.to_string(),
            display_name: persona.display_name,
            bio: Some(persona.bio),
            avatar_url: None,
            links: vec![persona.link],
            preferences: persona.preferences,
        });
        self.users.push(User {
            id,
            chain,
            address: address.to_owned(),
            username,
            created_at,
        });
    }

    pub(crate) fn extend(&mut self, other: PlatformData) {
        self.users.extend(other.users);
        self.profiles.extend(other.profiles);
        self.artifacts.extend(other.artifacts);
        self.challenges.extend(other.challenges);
        self.events.extend(other.events);
        self.event_artifacts.extend(other.event_artifacts);
    }
}

/// The data of the platforms named, for `shape` (its seed, users, days and end).
pub fn generate(shape: &Shape, kale: bool, fathuss: bool) -> PlatformData {
    let mut data = PlatformData::default();
    if kale {
        data.extend(kale_ndar(shape));
    }
    if fathuss {
        data.extend(fathuss_challenges(shape));
    }
    data
}

/// CSPR has 9 decimals (motes).
fn cspr(value: f64) -> String {
    format!("{value:.9}")
}

/// The validators stakers delegate to.
const VALIDATORS: [&str; 3] = [
    "01a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819a",
    "0202b1c2d3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0",
    "01c0ffee00000000000000000000000000000000000000000000000000000000aa",
];

/// Astake: stakers (a tenth of `--users`, at least 10) with Casper ed25519 accounts and
/// profiles. In time order across them: each deposits CSPR once or twice (shares minted at
/// the protocol's exchange rate of the moment), earns a reward most days (about 11% a
/// year), and some unbond part of their shares (released 14 hours later, seven eras) and
/// withdraw once released. Returns the data and the stakers' addresses.
pub fn astake(shape: &Shape) -> (PlatformData, Vec<String>) {
    let mut rng = Rng::fork(shape.seed, "astake");
    let end = shape.end.timestamp();
    let start = end - i64::from(shape.days) * 86_400;
    let stakers = (shape.users / 10).max(10);
    let mut data = PlatformData::default();
    let mut keys = Vec::with_capacity(stakers as usize);
    for i in 0..stakers {
        let public = ed25519_public(&mut rng);
        let address = format!("01{}", hex::encode(public));
        let created_at = at(start - rng.below(60 * 86_400) as i64 - 86_400);
        data.join(
            rng.uuid(),
            ChainFamily::Casper,
            &address,
            format!("astake_staker_{:03}", i + 1),
            created_at,
            Persona {
                display_name: format!("Staker {}", i + 1),
                bio: format!("Liquid staking CSPR since {}.", created_at.format("%B %Y")),
                link: Link {
                    label: "explorer".into(),
                    url: format!("https://cspr.live/account/{address}"),
                },
                preferences: doc! { "theme": "light", "currency": "USD" },
            },
        );
        keys.push(address);
    }
    // The protocol's pool, to price shares: CSPR pooled and shares outstanding.
    let (mut pooled, mut shares_out) = (0.0_f64, 0.0_f64);
    // Per staker: CSPR staked, shares held, pending unbonds (amount, release time).
    let mut staked = vec![0.0_f64; keys.len()];
    let mut shares = vec![0.0_f64; keys.len()];
    let mut unbonds: Vec<Vec<(f64, i64)>> = vec![Vec::new(); keys.len()];
    let mut block: i32 = 2_400_000;
    let mut n = 0;
    let mut push = |data: &mut PlatformData,
                    kind: &str,
                    who: &str,
                    ts: i64,
                    amount: f64,
                    attributes: serde_json::Value,
                    block: i32,
                    rng: &mut Rng| {
        n += 1;
        data.events.push(event(
            format!("astake-{n:06}"),
            kind,
            who,
            ts,
            Some(cspr(amount)),
            attributes,
            Some(rng.hex(64)),
            Some(block),
            None,
        ));
    };
    for day in 0..shape.days {
        let day_start = start + i64::from(day) * 86_400;
        for (s, staker) in keys.iter().enumerate() {
            let validator = VALIDATORS[s % VALIDATORS.len()];
            let ts = day_start + 3_600 + rng.below(18 * 3_600) as i64;
            if ts > end {
                continue;
            }
            block += 1 + rng.below(20) as i32;
            let deposit_day = day == 0 || (day == shape.days / 2 && s % 3 == 0);
            if deposit_day {
                let amount = (rng.range(1_000.0, 50_000.0) * 1e9).round() / 1e9;
                let rate = if shares_out > 0.0 {
                    pooled / shares_out
                } else {
                    1.0
                };
                let minted = (amount / rate * 1e9).round() / 1e9;
                pooled += amount;
                shares_out += minted;
                staked[s] += amount;
                shares[s] += minted;
                push(
                    &mut data,
                    "staking_deposit",
                    staker,
                    ts,
                    amount,
                    json!({ "validator": validator, "shares": cspr(minted) }),
                    block,
                    &mut rng,
                );
                continue;
            }
            if staked[s] > 0.0 && rng.unit() < 0.8 {
                let reward = (staked[s] * 0.0003 * rng.range(0.8, 1.2) * 1e9).round() / 1e9;
                pooled += reward;
                push(
                    &mut data,
                    "staking_reward",
                    staker,
                    ts,
                    reward,
                    json!({ "validator": validator, "era": 15_000 + i64::from(day) * 12 }),
                    block,
                    &mut rng,
                );
            }
            // Withdraw what has been released.
            let released: f64 = unbonds[s].iter().filter(|u| u.1 <= ts).map(|u| u.0).sum();
            if released > 0.0 && rng.unit() < 0.7 {
                unbonds[s].retain(|u| u.1 > ts);
                push(
                    &mut data,
                    "staking_withdraw",
                    staker,
                    ts + 60,
                    released,
                    json!({ "validator": validator }),
                    block,
                    &mut rng,
                );
            }
            if shares[s] > 0.0 && rng.unit() < 0.08 {
                let burned = (shares[s] * 0.3 * 1e9).round() / 1e9;
                let rate = pooled / shares_out;
                let amount = (burned * rate * 1e9).round() / 1e9;
                pooled -= amount;
                shares_out -= burned;
                shares[s] -= burned;
                staked[s] = (staked[s] - amount).max(0.0);
                let release = ts + 120 + 14 * 3_600;
                unbonds[s].push((amount, release));
                push(
                    &mut data,
                    "staking_unbond",
                    staker,
                    ts + 120,
                    amount,
                    json!({ "validator": validator, "shares": cspr(burned),
                             "release_at": at(release).to_rfc3339() }),
                    block,
                    &mut rng,
                );
            }
        }
    }
    (data, keys)
}

/// A token asset write of the Astake demo: who writes, and the tokens' values.
pub struct TokenWriteDraft {
    pub writer: &'static str,
    pub indexer: bool,
    /// (token id, owner, value, verified, contract, block)
    pub tokens: Vec<TokenDraft>,
}

#[derive(Debug, Clone)]
pub struct TokenDraft {
    pub token_id: String,
    pub owner: Option<String>,
    pub value: Option<String>,
    pub verified: Option<bool>,
    pub contract: Option<String>,
    pub block: i64,
}

/// Astake's token assets, in the order written: the chain indexer writes 20 tokens owned
/// by stakers; a wallet API then claims other owners for three of them and a valuation
/// oracle other values for three more (the indexer wins: conflicts resolved by the rule);
/// and two tokens the indexer has not seen get values from both the oracle and the wallet
/// API that disagree (open conflicts, for an admin).
pub fn astake_tokens(shape: &Shape, stakers: &[String]) -> Vec<TokenWriteDraft> {
    let mut rng = Rng::fork(shape.seed, "astake-tokens");
    let draft = |id: usize, block: i64| TokenDraft {
        token_id: format!("astake_nft_{id:03}"),
        owner: None,
        value: None,
        verified: None,
        contract: None,
        block,
    };
    let indexed: Vec<TokenDraft> = (1..=20)
        .map(|i| TokenDraft {
            owner: Some(stakers[i % stakers.len()].clone()),
            value: Some(format!("{:.2}", rng.range(100.0, 10_000.0))),
            verified: Some(rng.unit() < 0.8),
            contract: Some(format!("hash-{}", rng.hex(64))),
            ..draft(i, 2_400_000 + i as i64 * 7)
        })
        .collect();
    let claims: Vec<TokenDraft> = (1..=3)
        .map(|i| TokenDraft {
            owner: Some(stakers[(i + 5) % stakers.len()].clone()),
            ..draft(i, 2_400_500)
        })
        .collect();
    let valuations: Vec<TokenDraft> = (4..=6)
        .map(|i| TokenDraft {
            value: Some(format!("{:.2}", rng.range(100.0, 10_000.0))),
            ..draft(i, 2_400_510)
        })
        .collect();
    let unindexed = |value: f64, block: i64| -> Vec<TokenDraft> {
        (21..=22)
            .map(|i| TokenDraft {
                value: Some(format!("{:.2}", value + i as f64)),
                ..draft(i, block)
            })
            .collect()
    };
    vec![
        TokenWriteDraft {
            writer: "casper-indexer",
            indexer: true,
            tokens: indexed,
        },
        TokenWriteDraft {
            writer: "wallet-api",
            indexer: false,
            tokens: claims,
        },
        TokenWriteDraft {
            writer: "valuation-oracle",
            indexer: false,
            tokens: valuations,
        },
        TokenWriteDraft {
            writer: "valuation-oracle",
            indexer: false,
            tokens: unindexed(500.0, 2_400_520),
        },
        TokenWriteDraft {
            writer: "wallet-api",
            indexer: false,
            tokens: unindexed(650.0, 2_400_530),
        },
    ]
}

/// KALE-ndar's prediction markets, created by its first farmers: will KALE trade above a
/// target by a day after the seed's end (open markets).
pub fn kale_markets(
    shape: &Shape,
    data: &PlatformData,
) -> Vec<crate::domain::catalogue::MarketDraft> {
    let farmers = data
        .users
        .iter()
        .filter(|u| u.chain == ChainFamily::Stellar)
        .take(3);
    farmers
        .enumerate()
        .map(|(i, farmer)| {
            let target = ["0.0025", "0.004", "0.01"][i];
            crate::domain::catalogue::MarketDraft {
                id: format!("kale-above-{}", target.replace('.', "-")),
                kind: "prediction",
                base: None,
                quote: None,
                question: Some(format!(
                    "Will KALE trade above {target} USD by the end of day {}?",
                    i + 1
                )),
                creator: crate::values::Address::parse_as(ChainFamily::Stellar, &farmer.address)
                    .ok(),
                target_price: Some(target.to_owned()),
                resolve_at: Some(shape.end + chrono::Duration::days(i as i64 + 1)),
                metadata: None,
            }
        })
        .collect()
}

/// KALE has 7 decimals on Stellar.
const KALE_DECIMALS: u32 = 7;

/// Farmers (a quarter of `--users`, at least 10) each farm on most days: plant a stake,
/// submit work (a hash with leading zeros) a few minutes later, and harvest a reward that
/// grows with the zeros an hour or more after, with the proof as a raw CIDv1 artifact.
fn kale_ndar(shape: &Shape) -> PlatformData {
    let mut rng = Rng::fork(shape.seed, "kale");
    let end = shape.end.timestamp();
    let start = end - i64::from(shape.days) * 86_400;
    let farmers = (shape.users / 4).max(10);
    let mut data = PlatformData::default();
    let mut block: i32 = 1_200_000;
    let mut keys = Vec::with_capacity(farmers as usize);
    for i in 0..farmers {
        let public = ed25519_public(&mut rng);
        let address = stellar_strkey::ed25519::PublicKey(public)
            .to_string()
            .as_str()
            .to_owned();
        let created_at = at(start - rng.below(60 * 86_400) as i64 - 86_400);
        data.join(
            rng.uuid(),
            ChainFamily::Stellar,
            &address,
            format!("kale_farmer_{:03}", i + 1),
            created_at,
            Persona {
                display_name: format!("Farmer {}", i + 1),
                bio: format!("Farming KALE since {}.", created_at.format("%B %Y")),
                link: Link {
                    label: "explorer".into(),
                    url: format!("https://stellar.expert/explorer/public/account/{address}"),
                },
                preferences: doc! { "theme": "dark", "currency": "USD" },
            },
        );
        keys.push(address);
    }
    for day in 0..shape.days {
        let day_start = start + i64::from(day) * 86_400;
        for (f, farmer) in keys.iter().enumerate() {
            if rng.unit() < 0.3 {
                continue;
            }
            let planted = day_start + rng.below(20 * 3_600) as i64;
            let worked = planted + 300 + rng.below(1_500) as i64;
            let harvested = worked + 3_600 + rng.below(2 * 3_600) as i64;
            if harvested > end {
                continue;
            }
            block += 1 + rng.below(40) as i32;
            let stake = kale(rng.range(100.0, 5_000.0));
            let zeros = 4 + rng.below(6) as i64;
            let reward = kale(stake_f64(&stake) * (0.02 + 0.01 * zeros as f64));
            let key = format!("kale-{}-{}", f + 1, day + 1);
            let proof_bytes = format!("kale-ndar proof {farmer} block {block}");
            let (proof, sha256) = raw_cid(proof_bytes.as_bytes());
            data.events.push(event(
                format!("{key}-plant"),
                "farming_plant",
                farmer,
                planted,
                Some(stake.clone()),
                json!({ "stake": stake }),
                Some(rng.hex(64)),
                Some(block),
                None,
            ));
            data.events.push(event(
                format!("{key}-work"),
                "farming_work",
                farmer,
                worked,
                None,
                json!({
                    "work_hash": format!("{}{}", "0".repeat(zeros as usize), rng.hex(64 - zeros as usize)),
                    "zeros": zeros,
                }),
                Some(rng.hex(64)),
                Some(block),
                None,
            ));
            data.events.push(event(
                format!("{key}-harvest"),
                "farming_harvest",
                farmer,
                harvested,
                Some(reward.clone()),
                json!({ "reward": reward, "stake": stake }),
                Some(rng.hex(64)),
                Some(block),
                Some(proof.clone()),
            ));
            data.event_artifacts.push(ArtifactDraft {
                cid: proof,
                sha256,
                size: proof_bytes.len() as f64,
                media_type: "application/octet-stream".into(),
                kind: ArtifactKind::Proof,
                owner: farmer.clone(),
                chain: Some(ChainFamily::Stellar),
                name: Some(format!("proof-{block}.bin")),
                events: vec![format!("{key}-harvest")],
            });
        }
    }
    data
}

/// The catalogue: id, title, difficulty, tags.
const CHALLENGES: &[(&str, &str, Difficulty, &[&str])] = &[
    (
        "two-sum",
        "Two Sum",
        Difficulty::Easy,
        &["arrays", "hashing"],
    ),
    (
        "reverse-list",
        "Reverse a Linked List",
        Difficulty::Easy,
        &["lists"],
    ),
    (
        "valid-brackets",
        "Valid Brackets",
        Difficulty::Easy,
        &["stacks", "strings"],
    ),
    (
        "merge-intervals",
        "Merge Intervals",
        Difficulty::Medium,
        &["arrays", "sorting"],
    ),
    (
        "lru-cache",
        "LRU Cache",
        Difficulty::Medium,
        &["design", "hashing", "lists"],
    ),
    (
        "word-ladder",
        "Word Ladder",
        Difficulty::Medium,
        &["graphs", "bfs"],
    ),
    (
        "merkle-proof",
        "Verify a Merkle Proof",
        Difficulty::Medium,
        &["crypto", "trees"],
    ),
    (
        "median-stream",
        "Median of a Stream",
        Difficulty::Hard,
        &["heaps", "design"],
    ),
    (
        "edit-distance",
        "Edit Distance",
        Difficulty::Hard,
        &["dynamic-programming", "strings"],
    ),
    (
        "erc20-audit",
        "Find the ERC-20 Bug",
        Difficulty::Hard,
        &["solidity", "security"],
    ),
    (
        "zk-range-proof",
        "A Range Proof Verifier",
        Difficulty::Expert,
        &["crypto", "zk"],
    ),
    (
        "mev-sandwich",
        "Detect a Sandwich Attack",
        Difficulty::Expert,
        &["defi", "graphs"],
    ),
];

const LANGUAGES: &[&str] = &["rust", "python", "typescript", "go", "solidity"];

/// Twelve challenges with their test cases as raw CIDv1 artifacts, coders (a fifth of
/// `--users`, at least 10, EVM accounts) attempting a few each over the days, improving
/// from one submission to the next; each submission is graded (score, tests passed).
fn fathuss_challenges(shape: &Shape) -> PlatformData {
    let mut rng = Rng::fork(shape.seed, "fathuss");
    let end = shape.end.timestamp();
    let start = end - i64::from(shape.days) * 86_400;
    let coders = (shape.users / 5).max(10);
    let mut data = PlatformData::default();
    let mut addresses = Vec::with_capacity(coders as usize);
    for i in 0..coders {
        let address = format!("0x{}", rng.hex(40));
        let created_at = at(start - rng.below(90 * 86_400) as i64 - 86_400);
        let language = *rng.pick(LANGUAGES);
        data.join(
            rng.uuid(),
            ChainFamily::Evm,
            &address,
            format!("fathuss_coder_{:03}", i + 1),
            created_at,
            Persona {
                display_name: format!("Coder {}", i + 1),
                bio: format!("Solving since {}.", created_at.format("%B %Y")),
                link: Link {
                    label: "github".into(),
                    url: format!("https://github.com/fathuss-coder-{}", i + 1),
                },
                preferences: doc! { "theme": "light", "language": language },
            },
        );
        addresses.push(address);
    }
    // The catalogue's author: the first coder.
    let author = addresses[0].clone();
    let mut totals = Vec::with_capacity(CHALLENGES.len());
    for &(id, title, difficulty, tags) in CHALLENGES {
        let cases = 3 + rng.below(3);
        let mut test_cases = Vec::new();
        for case in 1..=cases {
            let bytes = format!("fathuss {id} test case {case}");
            let (cid, sha256) = raw_cid(bytes.as_bytes());
            data.artifacts.push(ArtifactDraft {
                cid: cid.clone(),
                sha256,
                size: bytes.len() as f64,
                media_type: "application/json".into(),
                kind: ArtifactKind::TestCase,
                owner: author.clone(),
                chain: Some(ChainFamily::Evm),
                name: Some(format!("{id}-{case}.json")),
                events: Vec::new(),
            });
            test_cases.push(cid);
        }
        data.challenges.push(ChallengeDraft {
            id: id.into(),
            title: title.into(),
            difficulty,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            test_cases,
        });
        totals.push(tests_for(difficulty));
    }
    for (c, coder) in addresses.iter().enumerate() {
        let attempts = 2 + rng.below(5) as usize;
        let first = rng.below(CHALLENGES.len() as u64) as usize;
        for a in 0..attempts {
            let challenge = (first + a * 5) % CHALLENGES.len();
            let (id, _, difficulty, _) = CHALLENGES[challenge];
            let total: u64 = totals[challenge];
            // Harder challenges start lower; each try gains on the last.
            let skill = match difficulty {
                Difficulty::Easy => 0.6,
                Difficulty::Medium => 0.45,
                Difficulty::Hard => 0.3,
                Difficulty::Expert => 0.15,
            };
            let mut passed = (rng.range(skill, skill + 0.4) * total as f64) as i64;
            let mut at_ts = start + rng.below(i64::from(shape.days).max(1) as u64 * 86_000) as i64;
            let tries = 1 + rng.below(3);
            for t in 0..tries {
                passed = passed.min(total as i64);
                if at_ts > end {
                    break;
                }
                let score = (passed * 100) as f64 / total as f64;
                data.events.push(event(
                    format!("fathuss-{}-{id}-{}", c + 1, t + 1),
                    "challenge_submission",
                    coder,
                    at_ts,
                    Some(format!("{score:.2}")),
                    json!({
                        "challenge": id,
                        "score": format!("{score:.2}"),
                        "passed_tests": passed,
                        "total_tests": total,
                        "runtime_ms": 5 + rng.below(1_995),
                        "language": *rng.pick(LANGUAGES),
                        "passed": passed == total as i64,
                    }),
                    None,
                    None,
                    None,
                ));
                passed += 1 + rng.below(total / 3) as i64;
                at_ts += 600 + rng.below(6 * 3_600) as i64;
            }
        }
    }
    data
}

/// The tests a submission to a challenge of `difficulty` is graded on.
pub fn tests_for(difficulty: Difficulty) -> u64 {
    match difficulty {
        Difficulty::Easy => 10,
        Difficulty::Medium => 15,
        Difficulty::Hard => 20,
        Difficulty::Expert => 25,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn event(
    id: String,
    kind: &str,
    subject: &str,
    ts: i64,
    amount: Option<String>,
    attributes: serde_json::Value,
    tx_hash: Option<String>,
    block_number: Option<i32>,
    artifact: Option<String>,
) -> EventDraft {
    EventDraft {
        id,
        kind: kind.into(),
        subject: subject.into(),
        chain: None,
        occurred_at: Some(at(ts)),
        amount,
        attributes,
        tx_hash,
        block_number,
        artifact,
    }
}

/// A raw CIDv1 (sha2-256) of `bytes`, with the digest in hex.
pub fn raw_cid(bytes: &[u8]) -> (String, String) {
    let digest = sha2::Sha256::digest(bytes);
    let hash = cid::multihash::Multihash::<64>::wrap(0x12, &digest)
        .expect("a sha2-256 digest fits a 64-byte multihash");
    (
        cid::Cid::new_v1(0x55, hash).to_string(),
        hex::encode(digest),
    )
}

/// An amount of KALE as text, rounded to its decimals.
pub fn kale(value: f64) -> String {
    format!("{value:.prec$}", prec = KALE_DECIMALS as usize)
}

fn stake_f64(text: &str) -> f64 {
    text.parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{artifacts, events, kinds::Kinds};

    fn shape() -> Shape {
        Shape {
            users: 40,
            assets: 4,
            days: 3,
            seed: 5,
            end: "2026-11-20T12:00:00Z".parse().expect("valid time"),
            platforms: super::super::Platforms::ALL,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_platform_data() {
        let (a, b) = (
            generate(&shape(), true, true),
            generate(&shape(), true, true),
        );
        let ids = |d: &PlatformData| d.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(
            a.users.iter().map(|u| &u.address).collect::<Vec<_>>(),
            b.users.iter().map(|u| &u.address).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_draft_passes_the_api_checks() {
        let kinds_file =
            crate::domain::kinds::KindsFile::parse(include_str!("../../catalogue/kinds.json"))
                .expect("the catalogue parses");
        let kinds = Kinds::new(kinds_file.kinds);
        let data = generate(&shape(), true, true);
        let now = shape().end;
        assert!(data.events.len() > 100, "{} events", data.events.len());
        for (i, draft) in data.events.into_iter().enumerate() {
            let id = draft.id.clone();
            if let Err(err) = events::check(&kinds, &format!("events[{i}]"), draft, now) {
                panic!("{id}: {err:?}");
            }
        }
        for (i, draft) in data
            .artifacts
            .into_iter()
            .chain(data.event_artifacts)
            .enumerate()
        {
            if let Err(err) = artifacts::check(&format!("artifacts[{i}]"), draft) {
                panic!("artifact {i}: {err:?}");
            }
        }
        for c in data.challenges {
            crate::domain::challenges::check(
                "challenges[0]",
                &c.id,
                &c.title,
                c.difficulty,
                &c.tags,
                &c.test_cases,
            )
            .expect("the challenge passes");
        }
        for user in data.users {
            assert!(
                crate::values::Address::parse_as(user.chain, &user.address).is_ok(),
                "{}",
                user.address
            );
        }
    }
}
