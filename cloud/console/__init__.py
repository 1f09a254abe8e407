"""The managers' web console: NiceGUI pages mounted on the cloud's FastAPI app.

Pages sign in through the API's session cookie, check the same role permissions and property
scopes, and call the same service functions as the API routes; they hold no business rule.
"""
