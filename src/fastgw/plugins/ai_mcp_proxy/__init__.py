"""ai-mcp-proxy: Model Context Protocol endpoints on routes, after Kong's
plugin of the same name (the modes fastgw has so far: conversion-listener;
see docs/kong-compatibility.md)."""
