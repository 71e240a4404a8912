"""Generated from proto/lethe/v1 by generate.sh; do not edit."""
