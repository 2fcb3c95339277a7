#!/bin/sh
exec /opt/fleet/server --config /opt/fleet/fleet.conf
