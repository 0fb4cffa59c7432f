"""sailctl's commands. Importing any of them sets the one warning filter the CLI needs:

certificates made with `openssl ... -set_serial 0` (Istio's tutorials do so) have serial 0,
which RFC 5280 §4.1.2.2 forbids and Go and Envoy accept; cryptography warns on every load of
one. That warning is not output of ours: `analyze` reports certificate problems itself and
`proxy-config secret` prints the serial.
"""

import warnings

warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
