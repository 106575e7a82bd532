/* The ibsync executable: everything happens in cmd/ (libibs_cmd). */
#include "cmd/cmd.h"

int main(int argc, char **argv)
{
    return ibs_cmd_main(argc, argv);
}
