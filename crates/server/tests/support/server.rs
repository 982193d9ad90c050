//! A server of the test's own ([`super::start`]) called through a client of its own: what the
//! API test files that talk to one server over its socket share (GET and POST with a token,
//! tokens and agents the admin makes). Each file adds the calls only it makes in an `impl`
//! block of its own.

use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::{Enrolled, Running};

/// A running server, its client, and its first admin token.
pub struct Server {
    /// The server: its URL, its store, its directory (removed on drop).
    pub running: Running,
    /// The client the test calls it through.
    pub client: Client,
    /// The server's first admin token, which makes tokens and agents.
    pub admin: &'static str,
}

impl Server {
    /// Starts a server whose first admin token is `admin`.
    pub async fn start(admin: &'static str) -> Server {
        Server::serving(super::start(admin).await, admin)
    }

    /// The server `running`, whose first admin token is `admin`, called through a client of
    /// its own.
    pub fn serving(running: Running, admin: &'static str) -> Server {
        Server {
            running,
            client: Client::new(),
            admin,
        }
    }

    /// Its URL, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.running.base
    }

    /// `GET path` with `token` ([`super::get`]).
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        super::get(&self.client, self.base(), path, token).await
    }

    /// `POST path` of the JSON `body` with `token` ([`super::post`]).
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        super::post(&self.client, self.base(), path, token, body).await
    }

    /// A token of `role` named `name`, made by the admin.
    pub async fn token(&self, name: &str, role: &str) -> String {
        super::token(&self.client, self.base(), self.admin, name, role).await
    }

    /// Enrolls node `name` of cluster `prod`, whose hostname is `hostname` ([`super::enroll`]).
    pub async fn enroll(&self, name: &str, hostname: &str) -> Enrolled {
        super::enroll(&self.client, self.base(), self.admin, name, hostname).await
    }

    /// Enrolls node `node-1` of cluster `prod`: its agent token.
    pub async fn agent(&self) -> String {
        self.enroll("node-1", "node-1").await.token
    }
}
