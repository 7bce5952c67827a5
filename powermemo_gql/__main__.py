import sys

from powermemo_gql.cli import main

sys.exit(main())
