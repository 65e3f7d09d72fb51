"""The studio server: a local model server (RunwayML-compatible `/query` + our JSON API), the Studio, Draw and
Wall pages, and the SQLite-backed store of drawings, latents, jobs and the gallery. Start it with
`latentstudio serve`; build an app in code with `latentstudio.server.app.create_app(ServeConfig(...))`."""
