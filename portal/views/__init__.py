"""The portal's pages, one module per area. Views stay thin: they call the same services and selectors as the
API, through `portal.access.OrgPage`, which scopes every page to one organisation and checks the role."""
