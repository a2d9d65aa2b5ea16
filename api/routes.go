package api

import (
	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

// routes is the whole API on one page.
func (s *Server) routes() {
	const (
		operator = hotzone.KindOperator
		admin    = hotzone.KindAdmin
		app      = hotzone.KindApp
		manager  = hotzone.KindManager
	)
	e := s.router
	e.Use(s.requestLog(), s.recoverer())
	e.NoRoute(func(c *gin.Context) { s.fail(c, newHTTPError(404, "no such route")) })
	e.NoMethod(func(c *gin.Context) { s.fail(c, newHTTPError(405, "this route does not take "+c.Request.Method)) })

	e.GET("/", s.handleRoot())
	e.GET("/healthz", s.handleHealthz())
	e.GET("/openapi.json", s.handleOpenAPI())
	e.GET("/tablet", s.handlePage(pageTablet))
	e.GET("/admin", s.handlePage(pageAdmin))
	e.GET("/assets/:version/*path", s.handleAsset())
	e.GET("/readyz", s.handleReadyz())
	if s.metricsHandler != nil {
		e.GET("/metrics", gin.WrapH(s.metricsHandler))
	}

	v1 := e.Group("/v1")
	v1.POST("/brands", s.requireKey(operator), s.handleCreateBrand())
	v1.GET("/me", s.requireKey(operator, admin, app, manager), s.handleMe())

	v1.GET("/policy", s.requireKey(admin), s.handleGetPolicy())
	v1.PATCH("/policy", s.requireKey(admin), s.handlePatchPolicy())

	v1.GET("/push", s.requireKey(admin), s.handleGetPush())
	v1.PUT("/push/apns", s.requireKey(admin), s.handlePutAPNs())
	v1.PUT("/push/fcm", s.requireKey(admin), s.handlePutFCM())
	v1.DELETE("/push/apns", s.requireKey(admin), s.handleDeleteCredentials(hotzone.ProviderAPNs))
	v1.DELETE("/push/fcm", s.requireKey(admin), s.handleDeleteCredentials(hotzone.ProviderFCM))

	v1.GET("/fences/nearby", s.requireKey(admin, app), s.handleFencesNearby())
	v1.GET("/stores", s.requireKey(admin), s.handleListStores())
	v1.GET("/stores.geojson", s.requireKey(admin), s.handleExportStores())
	v1.POST("/stores/import", s.requireKey(admin), s.handleImportStores())
	v1.PUT("/stores/:store_id", s.requireKey(admin), s.handlePutStore())
	v1.GET("/stores/:store_id", s.requireKey(admin, manager), s.handleGetStore())
	v1.DELETE("/stores/:store_id", s.requireKey(admin), s.handleDeleteStore())
	v1.POST("/stores/:store_id/manager-keys", s.requireKey(admin), s.handleCreateManagerKey())
	v1.GET("/stores/:store_id/manager-keys", s.requireKey(admin), s.handleListManagerKeys())
	v1.DELETE("/manager-keys/:key_id", s.requireKey(admin), s.handleDeleteManagerKey())

	v1.POST("/stores/:store_id/events", s.requireKey(admin, manager), s.handleStartEvent())
	v1.GET("/stores/:store_id/events/live", s.requireKey(admin, manager), s.handleGetLiveEvent())
	v1.DELETE("/stores/:store_id/events/live", s.requireKey(admin, manager), s.handleEndLiveEvent())
	v1.GET("/stores/:store_id/events/live/stream", s.requireKey(admin, manager), s.handleEventStream())
	v1.GET("/events", s.requireKey(admin), s.handleListEvents())
	v1.GET("/events/:event_id/report", s.requireKey(admin, manager), s.handleEventReport())
	v1.GET("/notifications", s.requireKey(admin), s.handleListNotifications())
	v1.POST("/notifications/:notification_id/open", s.requireKey(admin, app), s.handleOpen())

	for kind, path := range map[hotzone.PresetKind]string{hotzone.PresetAudience: "/audiences", hotzone.PresetTemplate: "/templates"} {
		param := "/:" + presetParams[kind]
		v1.GET(path, s.requireKey(admin, manager), s.handleListPresets(kind))
		v1.GET(path+param, s.requireKey(admin, manager), s.handleGetPreset(kind))
		v1.PUT(path+param, s.requireKey(admin), s.handlePutPreset(kind))
		v1.DELETE(path+param, s.requireKey(admin), s.handleDeletePreset(kind))
	}

	v1.POST("/webhooks", s.requireKey(admin), s.handleCreateWebhook())
	v1.GET("/webhooks", s.requireKey(admin), s.handleListWebhooks())
	v1.GET("/webhooks/:webhook_id", s.requireKey(admin), s.handleGetWebhook())
	v1.PATCH("/webhooks/:webhook_id", s.requireKey(admin), s.handlePatchWebhook())
	v1.DELETE("/webhooks/:webhook_id", s.requireKey(admin), s.handleDeleteWebhook())
	v1.POST("/webhooks/:webhook_id/test", s.requireKey(admin), s.handleTestWebhook())
	v1.GET("/webhooks/:webhook_id/deliveries", s.requireKey(admin), s.handleListDeliveries())
	v1.POST("/webhooks/:webhook_id/deliveries/:delivery_id/retry", s.requireKey(admin), s.handleRetryDelivery())

	v1.PUT("/devices/:device_id", s.withKey(s.handlePutDevice(), admin, app))
	// A device's data, for its user's request to see it: the admin's
	// only (the app key is public).
	v1.GET("/devices/:device_id", s.requireKey(admin), s.handleGetDevice())
	v1.DELETE("/devices/:device_id", s.requireKey(admin, app), s.handleDeleteDevice())
	v1.POST("/pings", s.withKey(s.handlePing(), admin, app))
	v1.POST("/pings/batch", s.withKey(s.handlePingBatch(), admin, app))
}
