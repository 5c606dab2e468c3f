//! The HTTP face of licensing v1 (`/apps/licensing/v1/product/…`): the methods, their
//! parameters and answers, over the pools of [`super::licences`].

use super::errors::ApiError;
use super::licences::assignment;
use super::{Shared, World, answer, bearer, json_body};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;

const BASE: &str = "/apps/licensing/v1/product";

/// The licensing routes: HTTP method, axum path and method id (as GAM and the licensing
/// discovery document name them).
pub const ROUTES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/apps/licensing/v1/product/{product}/sku/{sku}/user",
        "licensing.licenseAssignments.insert",
    ),
    (
        "GET",
        "/apps/licensing/v1/product/{product}/sku/{sku}/user/{user}",
        "licensing.licenseAssignments.get",
    ),
    (
        "PATCH",
        "/apps/licensing/v1/product/{product}/sku/{sku}/user/{user}",
        "licensing.licenseAssignments.patch",
    ),
    (
        "PUT",
        "/apps/licensing/v1/product/{product}/sku/{sku}/user/{user}",
        "licensing.licenseAssignments.update",
    ),
    (
        "DELETE",
        "/apps/licensing/v1/product/{product}/sku/{sku}/user/{user}",
        "licensing.licenseAssignments.delete",
    ),
    (
        "GET",
        "/apps/licensing/v1/product/{product}/users",
        "licensing.licenseAssignments.listForProduct",
    ),
    (
        "GET",
        "/apps/licensing/v1/product/{product}/sku/{sku}/users",
        "licensing.licenseAssignments.listForProductAndSku",
    ),
];

pub(super) fn router() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route(
            &format!("{BASE}/{{product}}/sku/{{sku}}/user"),
            axum::routing::post(insert),
        )
        .route(
            &format!("{BASE}/{{product}}/sku/{{sku}}/user/{{user}}"),
            get(get_one).patch(patch).put(patch).delete(delete),
        )
        .route(&format!("{BASE}/{{product}}/users"), get(list_for_product))
        .route(
            &format!("{BASE}/{{product}}/sku/{{sku}}/users"),
            get(list_for_sku),
        )
}

/// The scope licensing calls need.
const SCOPE: &str = "https://www.googleapis.com/auth/apps.licensing";

/// Checks the token as every API call does, and that it was asked with the licensing
/// scope (403 `insufficientPermissions` otherwise, as Google answers).
fn authorize<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
) -> Result<std::sync::MutexGuard<'a, World>, ApiError> {
    let world = super::authorize(shared, headers)?;
    if shared.licensing_disabled {
        return Err(ApiError::access_not_configured(
            "Enterprise License Manager API has not been used in project 000000000000 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/licensing.googleapis.com/overview then retry.",
        ));
    }
    let scoped = bearer(headers)
        .and_then(|token| world.grants.get(token))
        .is_some_and(|grant| grant.scopes.split_whitespace().any(|s| s == SCOPE));
    if !scoped {
        return Err(ApiError::insufficient_scopes());
    }
    Ok(world)
}

/// `GET /emulator/licences`: per SKU with a pool, its total, assigned, free and cooling
/// licences (not a Google API: for tests and people).
pub(super) async fn pools(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut world = shared.world();
    Json(world.licences.summary(Instant::now()))
}

/// `POST /emulator/licences` `{"sku": "1010070001", "add": 50}`: more licences, as
/// Google support grants them.
pub(super) async fn grant(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(&body)?;
    let sku = body["sku"]
        .as_str()
        .ok_or_else(|| ApiError::required("sku"))?;
    if super::licences::product_of(sku).is_none() {
        return Err(ApiError::invalid(format!("unknown SKU {sku}")));
    }
    let add = body["add"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::required("add"))?;
    let mut world = shared.world();
    world.licences.grant(sku, add);
    Ok(Json(world.licences.summary(Instant::now())))
}

/// The id of the user `key` names (address, alias or id), or 404 as Google answers an
/// unknown `userId`.
fn user_id(world: &World, key: &str) -> Result<String, ApiError> {
    world
        .users
        .id_of(key)
        .ok_or_else(|| ApiError::not_found("Resource Not Found: userKey"))
}

fn one(shared: &Shared, world: &World, product: &str, sku: &str, id: &str) -> Json<Value> {
    let email = world.users.primary_of(id).unwrap_or(id);
    Json(assignment(
        &shared.token_uri.replace("/token", ""),
        product,
        sku,
        email,
    ))
}

/// `licenseAssignments.insert`: `{"userId": EMAIL}`.
async fn insert(
    State(shared): State<Arc<Shared>>,
    Path((product, sku)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body = json_body(&body)?;
    let key = body["userId"]
        .as_str()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ApiError::required("userId"))?;
    let id = user_id(&world, key)?;
    world.licences.insert(&product, &sku, &id, Instant::now())?;
    Ok(one(&shared, &world, &product, &sku, &id))
}

/// `licenseAssignments.get`: 404 unless the user holds that SKU.
async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path((product, sku, user)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    let id = user_id(&world, &user)?;
    world.licences.get(&product, &sku, &id)?;
    let Json(value) = one(&shared, &world, &product, &sku, &id);
    Ok(answer(value, &params))
}

/// `licenseAssignments.patch` / `update`: `{"skuId": NEW}` moves the user within the
/// product (the path names the SKU held now).
async fn patch(
    State(shared): State<Arc<Shared>>,
    Path((product, sku, user)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body = json_body(&body)?;
    let new = body["skuId"]
        .as_str()
        .ok_or_else(|| ApiError::required("skuId"))?
        .to_owned();
    let id = user_id(&world, &user)?;
    world
        .licences
        .reassign(&product, &sku, &id, &new, Instant::now())?;
    Ok(one(&shared, &world, &product, &new, &id))
}

/// `licenseAssignments.delete`: `{}`.
async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((product, sku, user)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let id = user_id(&world, &user)?;
    world.licences.delete(&product, &sku, &id, Instant::now())?;
    Ok((StatusCode::OK, Json(json!({}))))
}

async fn list_for_product(
    State(shared): State<Arc<Shared>>,
    Path(product): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    list(&shared, &headers, &product, None, &params)
}

async fn list_for_sku(
    State(shared): State<Arc<Shared>>,
    Path((product, sku)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    list(&shared, &headers, &product, Some(&sku), &params)
}

/// A page of assignments: `customerId` required, `maxResults` 1–1000 (100 by default),
/// `pageToken` the last user id of the page before.
fn list(
    shared: &Shared,
    headers: &HeaderMap,
    product: &str,
    sku: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(shared, headers)?;
    match params.get("customerId").map(String::as_str) {
        None | Some("") => return Err(ApiError::required("customerId")),
        Some(c) if c != super::users::CUSTOMER_ID && c != "my_customer" => {
            return Err(ApiError::forbidden());
        }
        Some(_) => {}
    }
    let max = match params.get("maxResults") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid("Invalid value for maxResults"))?,
    };
    let after = params.get("pageToken").filter(|t| !t.is_empty());
    let (page, more) = world
        .licences
        .list(product, sku, after.map(String::as_str), max);
    let base = shared.token_uri.replace("/token", "");
    let items: Vec<Value> = page
        .iter()
        .map(|(id, sku)| {
            let email = world.users.primary_of(id).unwrap_or(id);
            assignment(&base, product, sku, email)
        })
        .collect();
    let mut out = json!({
        "kind": "licensing#licenseAssignmentList",
        "etag": super::auth::new_etag(),
        "items": items,
    });
    if more && let Some((last, _)) = page.last() {
        out["nextPageToken"] = json!(last);
    }
    Ok(answer(out, params))
}
