from footseg.cli import main

raise SystemExit(main())
