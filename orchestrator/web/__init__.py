"""HTTP plumbing of the product's one HTTP stack (Starlette on uvicorn): bounded request heads
and bodies, RFC 9457 problem responses, and the embedded server the health ports use.
"""
