"""Storage errors.

StorageError
├── MigrationError      a migration file failed or the recorded history disagrees
└── EmbeddedServerError the embedded PostgreSQL could not be started
"""


class StorageError(Exception):
    code = "storage_error"


class MigrationError(StorageError):
    code = "migration_failed"


class EmbeddedServerError(StorageError):
    code = "embedded_server_failed"
