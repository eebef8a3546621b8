"""``cors``: answer CORS preflight requests and add CORS headers to responses."""
