//! Artifacts by CID and the events each backs (PostgreSQL); subjects' latest proofs
//! (Redis).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};

use super::{shared, Batcher, LoadError};
use crate::store::postgres::{ArtifactRow, EventRow};

/// The most events an artifact lists.
pub const EVENTS_PER_ARTIFACT: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactByCid(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventsOfArtifact(pub String);

/// A subject's latest proof: (chain, address) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LatestProofOf {
    pub chain: String,
    pub subject: String,
}

impl Loader<ArtifactByCid> for Batcher {
    type Value = ArtifactRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ArtifactByCid],
    ) -> Result<HashMap<ArtifactByCid, ArtifactRow>, LoadError> {
        let _flight = self.flight("artifact");
        let cids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .artifacts_by_cid(&cids)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|a| (ArtifactByCid(a.cid.clone()), a))
            .collect())
    }
}

impl Loader<EventsOfArtifact> for Batcher {
    type Value = Vec<EventRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EventsOfArtifact],
    ) -> Result<HashMap<EventsOfArtifact, Vec<EventRow>>, LoadError> {
        let _flight = self.flight("events_of_artifact");
        let cids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .events_of_artifacts(&cids, EVENTS_PER_ARTIFACT)
            .await
            .map_err(shared)?;
        let mut out: HashMap<EventsOfArtifact, Vec<EventRow>> = HashMap::new();
        for (cid, event) in rows {
            out.entry(EventsOfArtifact(cid)).or_default().push(event);
        }
        Ok(out)
    }
}

impl Loader<LatestProofOf> for Batcher {
    type Value = (String, DateTime<Utc>);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[LatestProofOf],
    ) -> Result<HashMap<LatestProofOf, (String, DateTime<Utc>)>, LoadError> {
        let _flight = self.flight("latest_proof");
        let subjects: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.chain.clone(), k.subject.clone()))
            .collect();
        let found = self
            .stores
            .redis()
            .latest_proofs(&subjects)
            .await
            .map_err(shared)?;
        Ok(keys
            .iter()
            .cloned()
            .zip(found)
            .filter_map(|(key, proof)| Some((key, proof?)))
            .collect())
    }
}
