import EROFS
