//! The Enterprise License Manager API (licensing v1), through the same client as the
//! Directory API: one token (with the licensing scope), one limiter, the same retries.

use super::types::{LicenceAssignment, LicencePage};
use super::{CallError, CallFailure, Called, DirectoryClient, SetupError};
use crate::config::{self, licence_product};
use reqwest::{Method, Url};
use serde_json::json;

/// The scope licensing needs (domain-wide delegation must grant it too).
pub const LICENSING_SCOPE: &str = "https://www.googleapis.com/auth/apps.licensing";

impl DirectoryClient {
    /// Lets the client call licensing at `licences.api_base` (when `licences.enabled`),
    /// asking for its scope with the Directory ones.
    pub fn with_licences(mut self, licences: &config::Licences) -> Result<Self, SetupError> {
        if licences.enabled {
            let base = config::check_api_base(&licences.api_base)
                .map_err(|why| SetupError::ApiBase(format!("(licences.api_base) {why}")))?;
            self.licensing_base = Some(base);
            self.scopes.push(LICENSING_SCOPE);
        }
        Ok(self)
    }

    /// `…/apps/licensing/v1/product/{product of sku}/sku/{sku}` and `segments`.
    fn licensing_url(&self, sku: &str, segments: &[&str]) -> Result<Url, CallFailure> {
        let Some(base) = &self.licensing_base else {
            return Err(CallFailure {
                error: CallError::Token("licences are not enabled in this configuration".into()),
                attempts: 0,
            });
        };
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have paths")
            .pop_if_empty()
            .extend(["apps", "licensing", "v1", "product", licence_product(sku)])
            .extend(["sku", sku])
            .extend(segments);
        Ok(url)
    }

    /// `licenseAssignments.insert`: gives `user` a licence of `sku`.
    pub async fn assign_licence(
        &self,
        sku: &str,
        user: &str,
    ) -> Result<Called<LicenceAssignment>, CallFailure> {
        let url = self.licensing_url(sku, &["user"])?;
        let body = json!({ "userId": user });
        self.call(Method::POST, url, Some(&body), true).await
    }

    /// `licenseAssignments.get`: whether `user` holds `sku` (Google answers 404 when not).
    pub async fn licence_held(&self, sku: &str, user: &str) -> Result<bool, CallFailure> {
        let url = self.licensing_url(sku, &["user", user])?;
        match self
            .call::<LicenceAssignment>(Method::GET, url, None::<&()>, false)
            .await
        {
            Ok(_) => Ok(true),
            Err(failure) if failure.error.status() == Some(404) => Ok(false),
            Err(failure) => Err(failure),
        }
    }

    /// `licenseAssignments.delete`: takes `sku` back from `user`.
    pub async fn remove_licence(&self, sku: &str, user: &str) -> Result<(), CallFailure> {
        let url = self.licensing_url(sku, &["user", user])?;
        self.call::<serde_json::Value>(Method::DELETE, url, None::<&()>, true)
            .await
            .map(drop)
    }

    /// `listForProductAndSku`: one page of the users holding `sku`.
    pub async fn list_licences(
        &self,
        sku: &str,
        page_token: Option<&str>,
    ) -> Result<LicencePage, CallFailure> {
        let mut url = self.licensing_url(sku, &["users"])?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("customerId", &self.customer)
                .append_pair("maxResults", "1000");
            if let Some(token) = page_token {
                query.append_pair("pageToken", token);
            }
        }
        self.call(Method::GET, url, None::<&()>, false)
            .await
            .map(|called| called.value)
    }
}
