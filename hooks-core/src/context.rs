//! What a handler sees besides its payload: the [`Context`] of the call.
//!
//! The service builds one `Context` per request ([`Context::client`] or [`Context::server`]), with
//! the current user, a request id and typed extensions (a database pool, an HTTP client). The
//! dispatcher fills in the event (operation, asset, phase) and, before each handler, that handler's
//! id and params. Handlers of one call share per-call state ([`Context::set_state`],
//! [`Context::state`]): a before handler can leave a value that the after handlers read.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::HookError;
use crate::event::{Origin, Phase};
use crate::registration::Registration;

/// The authenticated user a call is made for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's email, when known.
    pub email: Option<String>,
    /// Roles, such as `"admin"`.
    pub roles: Vec<String>,
}

impl User {
    /// A user with this id, no email and no roles.
    pub fn new(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            email: None,
            roles: Vec::new(),
        }
    }

    /// Whether the user has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

type AnyMap = Vec<(TypeId, Arc<dyn Any + Send + Sync>)>;

/// The context of one call, as a handler sees it. See the [module docs](self).
pub struct Context {
    operation: &'static str,
    asset: Cow<'static, str>,
    phase: Phase,
    origin: Origin,
    user: Option<Arc<User>>,
    request_id: Option<Arc<str>>,
    /// The running handler; its id, params and phase are read through it.
    handler: Option<&'static Registration>,
    params: &'static [(&'static str, &'static str)],
    extensions: Arc<AnyMap>,
    state: Mutex<Vec<(TypeId, Box<dyn Any + Send>)>>,
    /// How many handler runs enclose the code that made this context (0: not handler code).
    depth: u32,
    /// Nested calls fire events up to this depth (0: nested calls fire none).
    nested_limit: u32,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("operation", &self.operation)
            .field("asset", &self.asset)
            .field("phase", &self.phase())
            .field("origin", &self.origin)
            .field("user", &self.user)
            .field("request_id", &self.request_id)
            .field("handler", &self.handler_id())
            .field("params", &self.params())
            .field("depth", &self.depth)
            .field("nested_limit", &self.nested_limit)
            .finish_non_exhaustive()
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::client()
    }
}

impl Context {
    fn with_origin(origin: Origin) -> Self {
        Context {
            operation: "",
            asset: Cow::Borrowed(""),
            phase: Phase::Before,
            origin,
            user: None,
            request_id: None,
            handler: None,
            params: &[],
            extensions: Arc::new(Vec::new()),
            state: Mutex::new(Vec::new()),
            depth: 0,
            nested_limit: 0,
        }
    }

    /// A context for a call made by a client of the service.
    pub fn client() -> Self {
        Self::with_origin(Origin::Client)
    }

    /// A context for a call made by server code.
    pub fn server() -> Self {
        Self::with_origin(Origin::Server)
    }

    /// Set the current user.
    pub fn with_user(mut self, user: User) -> Self {
        self.user = Some(Arc::new(user));
        self
    }

    /// Set the request id (for logs and tracing).
    pub fn with_request_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Add a typed extension (the service's state: a database pool, a client). One value per type;
    /// a second value of the same type replaces the first.
    pub fn with_extension<T: Any + Send + Sync>(mut self, value: T) -> Self {
        let map = Arc::make_mut(&mut self.extensions);
        let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
        match map.iter_mut().find(|(t, _)| *t == TypeId::of::<T>()) {
            Some(slot) => slot.1 = value,
            None => map.push((TypeId::of::<T>(), value)),
        }
        self
    }

    /// Set the handler params, as the attribute's `params(...)` would (for tests of one handler).
    pub fn with_params(mut self, params: &'static [(&'static str, &'static str)]) -> Self {
        self.params = params;
        self
    }

    /// Set the event, as the dispatcher does (for tests of one handler).
    pub fn with_event(
        mut self,
        operation: &'static str,
        asset: &'static str,
        phase: Phase,
    ) -> Self {
        self.operation = operation;
        self.asset = Cow::Borrowed(asset);
        self.phase = phase;
        self
    }

    /// A context for an API call that a handler makes: origin server, same user, request id and
    /// extensions, fresh per-call state, one level deeper. By default such a nested call fires no
    /// events (the recursion guard); [`Context::with_nested_events`] opts in.
    ///
    /// Pass it to tasks a handler spawns, so the guard holds there too.
    pub fn child(&self) -> Self {
        Context {
            user: self.user.clone(),
            request_id: self.request_id.clone(),
            extensions: Arc::clone(&self.extensions),
            depth: self.depth + 1,
            nested_limit: self.nested_limit,
            ..Self::server()
        }
    }

    /// Let calls made with this context fire events even when they are nested in handlers, up to
    /// `max_depth` levels of handlers; deeper calls fail with 508 `recursion_limit`.
    pub fn with_nested_events(mut self, max_depth: u32) -> Self {
        self.nested_limit = max_depth;
        self
    }

    /// How many levels of handlers enclose the code that made this context.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The nested-events limit set by [`Context::with_nested_events`].
    pub fn nested_limit(&self) -> u32 {
        self.nested_limit
    }

    /// An owned copy for work that outlives the call (background handlers get one): the event, origin, user, request id, params and
    /// extensions; fresh per-call state; one level deeper, so its own calls fire no events.
    pub fn detached(&self) -> Self {
        Context {
            operation: self.operation,
            asset: self.asset.clone(),
            phase: self.phase,
            origin: self.origin,
            user: self.user.clone(),
            request_id: self.request_id.clone(),
            handler: self.handler,
            params: self.params,
            extensions: Arc::clone(&self.extensions),
            state: Mutex::new(Vec::new()),
            depth: self.depth + 1,
            nested_limit: self.nested_limit,
        }
    }

    /// The operation's name, such as `"data.create"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The asset the call is about, such as `"Contact"`.
    pub fn asset(&self) -> &str {
        &self.asset
    }

    /// The phase of the running handler.
    pub fn phase(&self) -> Phase {
        self.handler.map_or(self.phase, |r| r.phase)
    }

    /// Where the call came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Whether the call came from a client of the service.
    pub fn is_client(&self) -> bool {
        self.origin == Origin::Client
    }

    /// The current user, if the call is authenticated.
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }

    /// The current user, or a 401 error for an anonymous call.
    pub fn require_user(&self) -> Result<&User, HookError> {
        self.user()
            .ok_or_else(|| HookError::unauthorized("this call needs an authenticated user"))
    }

    /// The request id, if the service set one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The id of the running handler (module path and function name).
    pub fn handler_id(&self) -> Option<&'static str> {
        self.handler.map(|r| r.id)
    }

    /// A param of the running handler, from the attribute's `params(key = "value")`.
    pub fn param(&self, key: &str) -> Option<&'static str> {
        self.params()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// All params of the running handler.
    pub fn params(&self) -> &'static [(&'static str, &'static str)] {
        self.handler.map_or(self.params, |r| r.params)
    }

    /// The extension of type `T`, if the service added one.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extensions
            .iter()
            .find(|(t, _)| *t == TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
    }

    /// The extension of type `T`, or a 500 error naming the missing type.
    pub fn require_extension<T: Any + Send + Sync>(&self) -> Result<&T, HookError> {
        self.extension::<T>().ok_or_else(|| {
            HookError::internal(format!(
                "the context has no extension of type {}",
                std::any::type_name::<T>()
            ))
        })
    }

    fn state_map(&self) -> MutexGuard<'_, Vec<(TypeId, Box<dyn Any + Send>)>> {
        // A handler that panicked while holding the lock leaves plain data behind: still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leave a value for the later handlers of this call (one value per type; replaces an earlier
    /// one of the same type).
    pub fn set_state<T: Any + Send>(&self, value: T) {
        let mut map = self.state_map();
        let value: Box<dyn Any + Send> = Box::new(value);
        match map.iter_mut().find(|(t, _)| *t == TypeId::of::<T>()) {
            Some(slot) => slot.1 = value,
            None => map.push((TypeId::of::<T>(), value)),
        }
    }

    /// A copy of the value of type `T` that an earlier handler of this call left.
    pub fn state<T: Any + Send + Clone>(&self) -> Option<T> {
        self.state_map()
            .iter()
            .find(|(t, _)| *t == TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
    }

    /// Take the value of type `T` out of the per-call state.
    pub fn take_state<T: Any + Send>(&self) -> Option<T> {
        let mut map = self.state_map();
        let at = map.iter().position(|(t, _)| *t == TypeId::of::<T>())?;
        map.swap_remove(at).1.downcast::<T>().ok().map(|b| *b)
    }

    /// Start a call: set the event and clear the state a previous call left.
    #[inline(always)]
    pub(crate) fn begin(
        &mut self,
        operation: &'static str,
        asset: &'static str,
        named: Option<Box<str>>,
    ) {
        self.operation = operation;
        self.asset = match named {
            Some(a) => Cow::Owned(a.into_string()),
            None => Cow::Borrowed(asset),
        };
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !state.is_empty() {
            state.clear();
        }
    }

    /// Point the context at the handler about to run (one store).
    #[inline]
    pub(crate) fn enter(&mut self, reg: &'static Registration) {
        self.handler = Some(reg);
    }

    /// The call's handlers are done.
    pub(crate) fn leave(&mut self) {
        self.handler = None;
    }
}
