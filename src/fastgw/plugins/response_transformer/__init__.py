"""``response-transformer``: change response headers and JSON body fields."""
