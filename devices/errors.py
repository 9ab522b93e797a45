"""Device-side errors: one small hierarchy for the whole ``devices`` package.

DeviceError                     device_error
├── CodecError                  codec_error        bytes that are not a valid frame
│   ├── FrameError              bad_frame          wrong header, length or terminator
│   └── ChecksumError           bad_checksum       the frame's check value does not match
├── EncodeError                 encode_error       a value cannot be put into a frame
│                                                  (too long, not encodable in the charset)
├── DriverError                 driver_error       the device answered, but not as asked
│   ├── DeviceTimeout           device_timeout     no answer within the driver's deadline
│   └── DeviceRefused           device_refused     the device answered with a failure status
└── DeviceOffline               device_offline     the transport is closed or unreachable

Codecs raise only :class:`CodecError` subclasses (and :class:`EncodeError` when encoding):
a fuzzed byte stream must never make a codec raise anything else. Drivers raise
:class:`DriverError` subclasses and :class:`DeviceOffline`.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Root of the device errors; ``code`` is stable and appears in events and logs."""

    code = "device_error"


class CodecError(DeviceError):
    code = "codec_error"


class FrameError(CodecError):
    code = "bad_frame"


class ChecksumError(CodecError):
    code = "bad_checksum"


class EncodeError(DeviceError):
    code = "encode_error"


class DriverError(DeviceError):
    code = "driver_error"


class DeviceTimeout(DriverError):
    code = "device_timeout"


class DeviceRefused(DriverError):
    code = "device_refused"


class DeviceOffline(DeviceError):
    code = "device_offline"
