from nnc.cli import main

raise SystemExit(main())
