"""The admin API (PRODUCT.md section 4), served by the supervisor."""
