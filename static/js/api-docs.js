// The API reference page (/api/v1/docs): Swagger UI from static/vendor over the
// OpenAPI document the portal generates. No network beyond this portal: the online
// validator badge is switched off. "Authorize" takes an API token for "Try it out".
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    validatorUrl: null,
    deepLinking: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    persistAuthorization: false,
  });
})();
