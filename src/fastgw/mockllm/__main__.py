import sys

from fastgw.mockllm.cli import main

sys.exit(main())
