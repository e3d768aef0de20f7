//! routes: the admin API's routes in one place. [`Routes`] adds a handler to
//! the axum router and writes down its method and path as it does, so the
//! list [`super::routes`] gives is the router itself, not a copy that could
//! drift; the OpenAPI test walks it (every route documented, every
//! documented route answering).

use axum::Router;
use axum::handler::Handler;
use axum::routing::{self, MethodRouter};

use super::AdminState;

/// One route: an upper-case method and an axum path (`{pool}` segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// The router being built and what it holds.
pub struct Routes {
    pub router: Router<AdminState>,
    pub list: Vec<Route>,
}

impl Default for Routes {
    fn default() -> Routes {
        Routes::new()
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        mr: MethodRouter<AdminState>,
    ) -> Self {
        // axum merges method routers of one path.
        self.router = self.router.route(path, mr);
        self.list.push(Route { method, path });
        self
    }

    pub fn get<H: Handler<T, AdminState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("GET", path, routing::get(h))
    }

    pub fn post<H: Handler<T, AdminState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("POST", path, routing::post(h))
    }

    pub fn put<H: Handler<T, AdminState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("PUT", path, routing::put(h))
    }

    pub fn delete<H: Handler<T, AdminState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("DELETE", path, routing::delete(h))
    }
}
