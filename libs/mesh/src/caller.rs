//! Who a call is for. The gateway authenticates the user and passes their id to the backend in
//! `x-fastbreak-user-id`, beside the internal credential; a backend trusts the header because
//! the mesh refuses every call without that credential before it reaches a service.

use tonic::Request;
use uuid::Uuid;

/// The header that carries the authenticated user's id from the gateway to a backend.
pub const USER_ID_HEADER: &str = "x-fastbreak-user-id";

/// The user a call is made for: UNAUTHENTICATED when the call names none (or names one that is
/// not a UUID, which the gateway never sends).
pub fn user_id<T>(request: &Request<T>) -> Result<Uuid, tonic::Status> {
    let value = request
        .metadata()
        .get(USER_ID_HEADER)
        .ok_or_else(|| crate::status::unauthenticated("this call needs a signed-in user (an access token)"))?;
    value
        .to_str()
        .ok()
        .and_then(|text| Uuid::parse_str(text).ok())
        .ok_or_else(|| crate::status::unauthenticated("the call's user identity is malformed"))
}

/// Marks a request as made for `user` (what the gateway does after authenticating the caller).
pub fn set_user_id<T>(request: &mut Request<T>, user: Uuid) {
    let value = user.hyphenated().to_string().parse().expect("a UUID is a valid header value");
    request.metadata_mut().insert(USER_ID_HEADER, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_read_back_and_a_missing_or_malformed_one_is_unauthenticated() {
        let user = Uuid::new_v4();
        let mut request = Request::new(());
        assert_eq!(user_id(&request).unwrap_err().code(), tonic::Code::Unauthenticated);
        set_user_id(&mut request, user);
        assert_eq!(user_id(&request).unwrap(), user);
        request.metadata_mut().insert(USER_ID_HEADER, "not-a-uuid".parse().unwrap());
        assert_eq!(user_id(&request).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
