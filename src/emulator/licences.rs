//! The Enterprise License Manager API (licensing v1) of the emulated customer: a pool of
//! licences per SKU, who holds which, and Google's rules around them.
//!
//! - One SKU per product per user; `insert` of a second one, or of a SKU whose pool has
//!   none left, answers 412 `conditionNotMet`; a user without the SKU asked for answers
//!   404 `notFound`.
//! - A licence taken back (removed, moved to another SKU, or the Fundamentals licence of a
//!   user archived or deleted) counts as used for `reuse_delay` (24 h at Google) before
//!   another user can get it.
//! - With auto-licensing, a new user gets an Education Fundamentals licence when one is
//!   free, and removing a licence answers 412 "Auto License un-assignment is not allowed".
//! - Archiving a user takes an Archived User licence (412 "insufficient archived user
//!   licenses" when none is free) and frees its Fundamentals licence; unarchiving gives
//!   the Archived User licence back.
//!
//! Assignments are kept by user id and answered with the user's current primary address
//! (`userId`), as Google does.

use super::errors::ApiError;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// The Education SKUs the emulator knows: product, SKU, product name, SKU name.
pub const SKUS: &[(&str, &str, &str, &str)] = &[
    (
        "Google-Apps",
        FUNDAMENTALS,
        "Google Workspace for Education",
        "Google Workspace for Education: Fundamentals",
    ),
    (
        "Google-Apps",
        "1010070004",
        "Google Workspace for Education",
        "Google Workspace for Education: Gmail Only",
    ),
    (
        "101034",
        ARCHIVED,
        "Google Workspace Archived User",
        "Google Workspace for Education Fundamentals - Archived User",
    ),
    (
        "101031",
        "1010310005",
        "Google Workspace for Education",
        "Google Workspace for Education Standard",
    ),
    (
        "101031",
        "1010310008",
        "Google Workspace for Education",
        "Google Workspace for Education Plus",
    ),
    (
        "101037",
        "1010370001",
        "Google Workspace for Education",
        "Google Workspace for Education: Teaching and Learning Upgrade",
    ),
];

/// Education Fundamentals, which every user needs.
pub const FUNDAMENTALS: &str = "1010070001";
/// Education Fundamentals – Archived User.
pub const ARCHIVED: &str = "1010340007";

/// The product a SKU belongs to.
pub fn product_of(sku: &str) -> Option<&'static str> {
    SKUS.iter().find(|s| s.1 == sku).map(|s| s.0)
}

/// Licences of one SKU.
#[derive(Debug, Default)]
struct Pool {
    total: u32,
    /// Licences held now.
    assigned: u32,
    /// When each licence taken back became free again; counted as used until then.
    cooling: VecDeque<Instant>,
}

/// Every pool and assignment.
#[derive(Debug)]
pub struct Licences {
    pools: BTreeMap<String, Pool>,
    /// (product, user id) → SKU.
    held: BTreeMap<(String, String), String>,
    reuse_delay: Duration,
    auto: bool,
}

impl Licences {
    /// Pools of `totals` (SKU → licences; a known SKU not listed has none).
    pub fn new(totals: &BTreeMap<String, u32>, reuse_delay: Duration, auto: bool) -> Licences {
        let pools = totals
            .iter()
            .map(|(sku, total)| {
                let pool = Pool {
                    total: *total,
                    ..Pool::default()
                };
                (sku.clone(), pool)
            })
            .collect();
        Licences {
            pools,
            held: BTreeMap::new(),
            reuse_delay,
            auto,
        }
    }

    /// Adds `more` licences to the pool of `sku` (Google support granting more).
    pub fn grant(&mut self, sku: &str, more: u32) {
        self.pools.entry(sku.to_owned()).or_default().total += more;
    }

    /// Licences of `sku` free to give now.
    pub fn available(&mut self, sku: &str, now: Instant) -> u32 {
        let Some(pool) = self.pools.get_mut(sku) else {
            return 0;
        };
        while pool.cooling.front().is_some_and(|at| *at <= now) {
            pool.cooling.pop_front();
        }
        pool.total
            .saturating_sub(pool.assigned)
            .saturating_sub(pool.cooling.len() as u32)
    }

    /// Records that `user` holds `sku` of `product` (replacing what it held of it).
    fn hold(&mut self, product: &str, user: &str, sku: &str) {
        let key = (product.to_owned(), user.to_owned());
        if let Some(before) = self.held.insert(key, sku.to_owned()) {
            self.pool(&before, |p| p.assigned = p.assigned.saturating_sub(1));
        }
        self.pool(sku, |p| p.assigned += 1);
    }

    /// Takes back what `user` holds of `product`; the SKU it held.
    fn release(&mut self, product: &str, user: &str) -> Option<String> {
        let sku = self.held.remove(&(product.to_owned(), user.to_owned()))?;
        self.pool(&sku, |p| p.assigned = p.assigned.saturating_sub(1));
        Some(sku)
    }

    fn pool(&mut self, sku: &str, change: impl FnOnce(&mut Pool)) {
        if let Some(pool) = self.pools.get_mut(sku) {
            change(pool);
        }
    }

    /// Licences of `sku` taken back and not yet reusable.
    pub fn cooling(&mut self, sku: &str, now: Instant) -> u32 {
        self.available(sku, now);
        self.pools.get(sku).map_or(0, |p| p.cooling.len() as u32)
    }

    fn free(&mut self, sku: &str, now: Instant) {
        let reusable = now + self.reuse_delay;
        if let Some(pool) = self.pools.get_mut(sku) {
            pool.cooling.push_back(reusable);
        }
    }

    /// Per SKU with a pool: total, assigned, available and cooling.
    pub fn summary(&mut self, now: Instant) -> Value {
        let skus: Vec<String> = self.pools.keys().cloned().collect();
        let mut out = serde_json::Map::new();
        for sku in skus {
            let available = self.available(&sku, now);
            let cooling = self.cooling(&sku, now);
            let (total, assigned) = (self.pools[&sku].total, self.pools[&sku].assigned);
            out.insert(
                sku,
                json!({"total": total, "assigned": assigned, "available": available, "cooling": cooling}),
            );
        }
        Value::Object(out)
    }

    /// The SKU `user` holds of `product`.
    pub fn held(&self, product: &str, user: &str) -> Option<&str> {
        self.held
            .get(&(product.to_owned(), user.to_owned()))
            .map(String::as_str)
    }

    /// `licenseAssignments.insert` for the user of id `user`.
    pub fn insert(
        &mut self,
        product: &str,
        sku: &str,
        user: &str,
        now: Instant,
    ) -> Result<(), ApiError> {
        check_pair(product, sku)?;
        if self.held(product, user).is_some() {
            return Err(ApiError::condition_not_met(
                "User already has a license for the specified product and SKU",
            ));
        }
        if self.available(sku, now) == 0 {
            return Err(not_enough());
        }
        self.hold(product, user, sku);
        Ok(())
    }

    /// `licenseAssignments.get`: 404 unless `user` holds `sku`.
    pub fn get(&self, product: &str, sku: &str, user: &str) -> Result<(), ApiError> {
        check_pair(product, sku)?;
        match self.held(product, user) {
            Some(held) if held == sku => Ok(()),
            _ => Err(not_held()),
        }
    }

    /// `licenseAssignments.patch`: moves `user` from `sku` to `new` within the product.
    pub fn reassign(
        &mut self,
        product: &str,
        sku: &str,
        user: &str,
        new: &str,
        now: Instant,
    ) -> Result<(), ApiError> {
        self.get(product, sku, user)?;
        check_pair(product, new)?;
        if new == sku {
            return Err(ApiError::condition_not_met(
                "User already has a license for the specified product and SKU",
            ));
        }
        if self.available(new, now) == 0 {
            return Err(not_enough());
        }
        self.hold(product, user, new);
        self.free(sku, now);
        Ok(())
    }

    /// `licenseAssignments.delete`.
    pub fn delete(
        &mut self,
        product: &str,
        sku: &str,
        user: &str,
        now: Instant,
    ) -> Result<(), ApiError> {
        self.get(product, sku, user)?;
        if self.auto && sku == FUNDAMENTALS {
            return Err(ApiError::condition_not_met(
                "Auto License un-assignment is not allowed",
            ));
        }
        self.release(product, user);
        self.free(sku, now);
        Ok(())
    }

    /// A new user: with auto-licensing, a Fundamentals licence if one is free.
    pub fn created(&mut self, user: &str, now: Instant) {
        if self.auto && self.available(FUNDAMENTALS, now) > 0 {
            self.hold("Google-Apps", user, FUNDAMENTALS);
        }
    }

    /// A user archived (`true`) or unarchived (`false`) through `users.update`.
    pub fn archived(&mut self, user: &str, archived: bool, now: Instant) -> Result<(), ApiError> {
        if !archived {
            if self.release("101034", user).is_some() {
                self.free(ARCHIVED, now);
            }
            return Ok(());
        }
        if self.held("101034", user).is_some() {
            return Ok(());
        }
        if self.available(ARCHIVED, now) == 0 {
            return Err(ApiError::condition_not_met(
                "Insufficient archived user licenses",
            ));
        }
        self.hold("101034", user, ARCHIVED);
        if let Some(sku) = self.release("Google-Apps", user) {
            self.free(&sku, now);
        }
        Ok(())
    }

    /// A user deleted: every licence it held is taken back.
    pub fn deleted(&mut self, user: &str, now: Instant) {
        let held: Vec<(String, String)> = self
            .held
            .iter()
            .filter(|((_, u), _)| u == user)
            .map(|((p, _), s)| (p.clone(), s.clone()))
            .collect();
        for (product, sku) in held {
            self.release(&product, user);
            self.free(&sku, now);
        }
    }

    /// `listForProduct` / `listForProductAndSku`: user ids in id order from `after` (the
    /// page token), at most `max`; the page and whether more follow.
    pub fn list(
        &self,
        product: &str,
        sku: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> (Vec<(String, String)>, bool) {
        use std::ops::Bound;
        let from = (product.to_owned(), after.unwrap_or_default().to_owned());
        let start = match after {
            Some(_) => Bound::Excluded(from),
            None => Bound::Included(from),
        };
        let mut matching = self
            .held
            .range((start, Bound::Unbounded))
            .take_while(|((p, _), _)| p == product)
            .filter(|(_, s)| sku.is_none_or(|k| k == s.as_str()))
            .map(|((_, u), s)| (u.clone(), s.clone()));
        let page: Vec<(String, String)> = matching.by_ref().take(max).collect();
        let more = matching.next().is_some();
        (page, more)
    }
}

fn check_pair(product: &str, sku: &str) -> Result<(), ApiError> {
    match product_of(sku) {
        Some(p) if p == product => Ok(()),
        _ => Err(ApiError::invalid("Invalid productId/skuId pair")),
    }
}

fn not_enough() -> ApiError {
    ApiError::condition_not_met(
        "There aren't enough available licenses for the specified product-SKU pair",
    )
}

fn not_held() -> ApiError {
    ApiError::not_found("User does not have a license for specified sku and product")
}

/// A `LicenseAssignment` as Google answers it.
pub fn assignment(base: &str, product: &str, sku: &str, user_email: &str) -> Value {
    let names = SKUS.iter().find(|s| s.1 == sku);
    json!({
        "kind": "licensing#licenseAssignment",
        "etags": super::auth::new_etag(),
        "productId": product,
        "skuId": sku,
        "userId": user_email,
        "productName": names.map_or("", |n| n.2),
        "skuName": names.map_or("", |n| n.3),
        "selfLink": format!("{base}/apps/licensing/v1/product/{product}/sku/{sku}/user/{user_email}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(fundamentals: u32, archived: u32) -> BTreeMap<String, u32> {
        BTreeMap::from([
            (FUNDAMENTALS.to_owned(), fundamentals),
            (ARCHIVED.to_owned(), archived),
        ])
    }

    #[test]
    fn a_pool_runs_out_and_a_freed_licence_waits_for_the_delay() {
        let start = Instant::now();
        let delay = Duration::from_secs(60);
        let mut licences = Licences::new(&pools(2, 0), delay, false);
        licences
            .insert("Google-Apps", FUNDAMENTALS, "1", start)
            .unwrap();
        licences
            .insert("Google-Apps", FUNDAMENTALS, "2", start)
            .unwrap();
        let empty = licences
            .insert("Google-Apps", FUNDAMENTALS, "3", start)
            .unwrap_err();
        assert_eq!(
            (empty.status.as_u16(), empty.reason),
            (412, "conditionNotMet")
        );
        licences
            .delete("Google-Apps", FUNDAMENTALS, "1", start)
            .unwrap();
        assert_eq!(licences.available(FUNDAMENTALS, start), 0);
        assert_eq!(licences.cooling(FUNDAMENTALS, start), 1);
        assert!(
            licences
                .insert("Google-Apps", FUNDAMENTALS, "3", start)
                .is_err()
        );
        let later = start + delay;
        assert_eq!(licences.available(FUNDAMENTALS, later), 1);
        licences
            .insert("Google-Apps", FUNDAMENTALS, "3", later)
            .unwrap();
    }

    #[test]
    fn google_refuses_a_second_licence_a_wrong_pair_and_a_licence_not_held() {
        let now = Instant::now();
        let mut licences = Licences::new(&pools(5, 0), Duration::ZERO, false);
        licences
            .insert("Google-Apps", FUNDAMENTALS, "1", now)
            .unwrap();
        let twice = licences
            .insert("Google-Apps", FUNDAMENTALS, "1", now)
            .unwrap_err();
        assert_eq!(twice.status.as_u16(), 412);
        let pair = licences
            .insert("101034", FUNDAMENTALS, "2", now)
            .unwrap_err();
        assert_eq!((pair.status.as_u16(), pair.reason), (400, "invalid"));
        let missing = licences.get("Google-Apps", FUNDAMENTALS, "2").unwrap_err();
        assert_eq!((missing.status.as_u16(), missing.reason), (404, "notFound"));
    }

    #[test]
    fn archiving_needs_an_archived_licence_and_frees_fundamentals() {
        let now = Instant::now();
        let mut licences = Licences::new(&pools(1, 1), Duration::from_secs(60), false);
        licences
            .insert("Google-Apps", FUNDAMENTALS, "1", now)
            .unwrap();
        licences.archived("1", true, now).unwrap();
        assert_eq!(licences.held("Google-Apps", "1"), None);
        assert_eq!(licences.held("101034", "1"), Some(ARCHIVED));
        assert_eq!(licences.cooling(FUNDAMENTALS, now), 1);
        let none_left = licences.archived("2", true, now).unwrap_err();
        assert_eq!(none_left.status.as_u16(), 412);
        assert!(none_left.message.contains("archived user licenses"));
    }

    #[test]
    fn auto_licensing_assigns_on_creation_and_refuses_removal() {
        let now = Instant::now();
        let mut licences = Licences::new(&pools(1, 0), Duration::ZERO, true);
        licences.created("1", now);
        licences.created("2", now);
        assert_eq!(licences.held("Google-Apps", "1"), Some(FUNDAMENTALS));
        assert_eq!(
            licences.held("Google-Apps", "2"),
            None,
            "the pool was empty"
        );
        let refused = licences
            .delete("Google-Apps", FUNDAMENTALS, "1", now)
            .unwrap_err();
        assert!(refused.message.contains("Auto License"));
    }

    #[test]
    fn listing_pages_in_id_order() {
        let now = Instant::now();
        let mut licences = Licences::new(&pools(10, 0), Duration::ZERO, false);
        for id in ["3", "1", "2"] {
            licences
                .insert("Google-Apps", FUNDAMENTALS, id, now)
                .unwrap();
        }
        let (first, more) = licences.list("Google-Apps", Some(FUNDAMENTALS), None, 2);
        assert_eq!(
            first.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!(more);
        let (rest, more) = licences.list("Google-Apps", None, Some("2"), 2);
        assert_eq!(rest.len(), 1);
        assert!(!more);
    }
}
