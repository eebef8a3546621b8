"""acl: allow or deny consumers by the groups they belong to (Kong's plugin of
the same name); it needs an auth plugin to identify the consumer first."""
