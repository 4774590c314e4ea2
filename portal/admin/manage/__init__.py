"""Shared pieces of the back-office management pages (customers, endpoints, catalogue,
ratecards, providers, routing rules, settings): list helpers (`common`), forms
(`forms`), business rules (`services`) and the rate pages of both sides (`rates`).
The pages themselves are the feature modules of `portal.admin`."""
