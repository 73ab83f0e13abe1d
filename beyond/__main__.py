from beyond.cli import main

raise SystemExit(main())
